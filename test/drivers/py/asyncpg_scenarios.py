"""asyncpg against pgfence, one scenario per run: python3 asyncpg_scenarios.py SCENARIO."""

import asyncio

import asyncpg

from driver_common import main, settings

NOTIFY_WAIT_SECONDS = 10  # an upper bound on the wait for the notification, not a synchronisation


def connect_args():
    s = settings()
    return {
        'host': s['host'],
        'port': s['port'],
        'user': s['user'],
        'password': s['password'],
        'database': s['dbname'],
        'timeout': 10,
    }


async def scenario_connect():
    conn = await asyncpg.connect(**connect_args())
    try:
        notes = [r['note'] for r in await conn.fetch('SELECT note FROM items ORDER BY id')]
        search_path = await conn.fetchval("SELECT current_setting('search_path')")
        return {'notes': notes, 'search_path': search_path, 'client_encoding': conn.get_settings().client_encoding}
    finally:
        await conn.close()


async def scenario_pool():
    # On release asyncpg resets the connection: SELECT pg_advisory_unlock_all(); CLOSE ALL;
    # UNLISTEN *; RESET ALL; so every acquire after the first gets a released connection.
    pool = await asyncpg.create_pool(**connect_args(), min_size=1, max_size=2)
    try:
        sequential = []
        for i in range(5):
            async with pool.acquire() as conn:
                sequential.append(await conn.fetchval('SELECT $1::int * 3', i))

        async def one(i):
            async with pool.acquire() as conn:
                async with conn.transaction():
                    return await conn.fetchval('SELECT count(*) FROM items WHERE id <= $1', i)

        concurrent = await asyncio.gather(*(one(i) for i in range(4)))
        return {'sequential': sequential, 'concurrent': list(concurrent)}
    finally:
        await pool.close()


async def scenario_prepare():
    conn = await asyncpg.connect(**connect_args())
    try:
        by_id = await conn.prepare('SELECT id, note FROM items WHERE id = $1')
        rows = [dict(r) for i in (1, 2, 3) for r in await by_id.fetch(i)]
        add = await conn.prepare('SELECT $1::int + $2::int')
        sums = [await add.fetchval(i, 10 * i) for i in range(1, 11)]
        return {
            'rows': rows,
            'sums': sums,
            'parameter_types': [t.name for t in add.get_parameters()],
            'columns': [a.name for a in by_id.get_attributes()],
        }
    finally:
        await conn.close()


async def scenario_listen():
    listener = await asyncpg.connect(**connect_args())
    notifier = await asyncpg.connect(**connect_args())
    try:
        received = asyncio.get_running_loop().create_future()

        def on_notify(_conn, _pid, channel, payload):
            if not received.done():
                received.set_result({'channel': channel, 'payload': payload})

        await listener.add_listener('events', on_notify)
        await notifier.execute("NOTIFY events, 'hello from asyncpg'")
        try:
            return await asyncio.wait_for(received, NOTIFY_WAIT_SECONDS)
        except asyncio.TimeoutError:
            raise RuntimeError(f'no notification within {NOTIFY_WAIT_SECONDS} s') from None
    finally:
        await listener.close()
        await notifier.close()


if __name__ == '__main__':
    main({
        'connect': scenario_connect,
        'pool': scenario_pool,
        'prepare': scenario_prepare,
        'listen': scenario_listen,
    })
