"""psycopg 3 against pgfence, one scenario per run: python3 psycopg_scenarios.py SCENARIO."""

import asyncio

import psycopg

from driver_common import main, settings

QUERIES = 130  # distinct statements: past prepared_max (100), so psycopg evicts with DEALLOCATE
# Runs of each, back to back: psycopg keeps at most prepared_max counts too, so a round-robin over
# 130 statements would never reach the threshold. Runs 1-5 are unprepared, run 6 prepares
# (prepare_threshold is 5), runs 7-8 execute the prepared statement.
RUNS = 8


def connect(**extra):
    return psycopg.connect(**settings(), connect_timeout=10, **extra)


def scenario_connect():
    with connect(autocommit=True) as conn:
        notes = [row[0] for row in conn.execute('SELECT note FROM items ORDER BY id')]
        search_path = conn.execute("SELECT current_setting('search_path')").fetchone()[0]
        return {
            'notes': notes,
            'search_path': search_path,
            'encoding': conn.info.encoding,
            'server_version': conn.info.server_version,
        }


def scenario_prepare():
    wrong = []
    with connect(autocommit=True) as conn:
        threshold, prepared_max = conn.prepare_threshold, conn.prepared_max
        for i in range(QUERIES):
            for run in range(RUNS):
                x = run * 1000 + i
                row = conn.execute(f'SELECT %s::int + {i} AS v, %s::text AS tag', (x, f'q{i}')).fetchone()
                if row != (x + i, f'q{i}'):
                    wrong.append({'query': i, 'run': run, 'row': list(row) if row else None})
        # psycopg's own bookkeeping (private, pinned by Debian's 3.1): how many statements it
        # prepared, and how many it still holds after evicting the oldest with DEALLOCATE.
        prepared = conn._prepared
        return {
            'prepare_threshold': threshold,
            'prepared_max': prepared_max,
            'executed': QUERIES * RUNS,
            'statements_prepared': prepared._prepared_idx,
            'statements_held': len(prepared._names),
            'wrong': wrong[:5],
        }


def scenario_pipeline():
    with connect(autocommit=True) as conn:
        conn.execute('CREATE TABLE pipe_items (id int PRIMARY KEY, note text NOT NULL)')
        with conn.pipeline() as pipeline:
            for i in range(1, 21):
                conn.execute('INSERT INTO pipe_items VALUES (%s, %s)', (i, f'pipe {i}'))
            totals = conn.execute('SELECT count(*), sum(id) FROM pipe_items')
            seventh = conn.execute('SELECT note FROM pipe_items WHERE id = %s', (7,))
            pipeline.sync()
            count, total = totals.fetchone()
            note = seventh.fetchone()[0]
        # A pipeline inside an explicit transaction, rolled back: none of its rows stay.
        with conn.transaction(force_rollback=True):
            with conn.pipeline():
                for i in range(21, 31):
                    conn.execute('INSERT INTO pipe_items VALUES (%s, %s)', (i, f'pipe {i}'))
                inside = conn.execute('SELECT count(*) FROM pipe_items')
            count_inside = inside.fetchone()[0]
        count_after = conn.execute('SELECT count(*) FROM pipe_items').fetchone()[0]
        return {'count': count, 'sum': total, 'note7': note, 'count_inside': count_inside, 'count_after': count_after}


def scenario_copy():
    rows_in = [(i, f'row {i}' if i % 50 else f'tab\there, newline\nthere, backslash \\ {i}') for i in range(1, 501)]
    with connect(autocommit=True) as conn:
        conn.execute('CREATE TABLE copy_items (id int PRIMARY KEY, note text NOT NULL)')
        with conn.cursor() as cur:
            with cur.copy('COPY copy_items (id, note) FROM STDIN') as copy:
                for row in rows_in:
                    copy.write_row(row)
            rows_out = []
            with cur.copy('COPY (SELECT id, note FROM copy_items ORDER BY id) TO STDOUT') as copy:
                copy.set_types(['int4', 'text'])
                for row in copy.rows():
                    rows_out.append(row)
        count = conn.execute('SELECT count(*) FROM copy_items').fetchone()[0]
        return {
            'count': count,
            'round_trip_equal': rows_out == rows_in,
            'copied_out': len(rows_out),
            'row50': list(rows_out[49]) if len(rows_out) >= 50 else None,
        }


def scenario_server_cursor():
    with connect() as conn:
        with conn.transaction():
            with conn.cursor(name='pgfence_big', scrollable=True) as cur:
                cur.itersize = 100
                cur.execute('SELECT g, g * 2 FROM generate_series(1, 1000) AS g')
                first = cur.fetchmany(10)
                cur.scroll(500, mode='absolute')  # position 500: the next fetch gives row 501
                middle = cur.fetchone()
                cur.scroll(0, mode='absolute')
                rows = list(cur)
            open_cursors = conn.execute("SELECT count(*) FROM pg_cursors WHERE name = 'pgfence_big'").fetchone()[0]
        return {
            'first': [list(r) for r in first],
            'middle': list(middle),
            'count': len(rows),
            'sum': sum(r[0] for r in rows),
            'open_after_close': open_cursors,
        }


async def scenario_async():
    async def one(i):
        async with await psycopg.AsyncConnection.connect(**settings(), connect_timeout=10, autocommit=True) as conn:
            cur = await conn.execute('SELECT %s::int * 10, note FROM items WHERE id = 1', (i,))
            value, note = await cur.fetchone()
            async with conn.transaction():
                await conn.execute('INSERT INTO async_items VALUES (%s)', (i,))
            return [value, note]

    async with await psycopg.AsyncConnection.connect(**settings(), connect_timeout=10, autocommit=True) as conn:
        await conn.execute('CREATE TABLE async_items (id int PRIMARY KEY)')
        results = await asyncio.gather(*(one(i) for i in range(1, 4)))
        cur = await conn.execute('SELECT array_agg(id ORDER BY id) FROM async_items')
        ids = (await cur.fetchone())[0]
        return {'results': results, 'ids': ids}


if __name__ == '__main__':
    main({
        'connect': scenario_connect,
        'prepare': scenario_prepare,
        'pipeline': scenario_pipeline,
        'copy': scenario_copy,
        'server-cursor': scenario_server_cursor,
        'async': scenario_async,
    })
