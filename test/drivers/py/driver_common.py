"""Shared by the Python driver scripts: connection settings from the environment, the scenario
named on the command line, and its result as one JSON line on stdout. A failure exits 1 with a JSON
line on stderr that carries the driver's exception type, SQLSTATE (when it has one) and message."""

import asyncio
import inspect
import json
import os
import sys


def settings():
    """Where pgfence listens and how to log in (the password is a JWT)."""
    return {
        'host': os.environ['PGFENCE_HOST'],
        'port': int(os.environ['PGFENCE_PORT']),
        'user': os.environ['PGFENCE_USER'],
        'password': os.environ['PGFENCE_PASSWORD'],
        'dbname': os.environ['PGFENCE_DATABASE'],
    }


def describe(error):
    return {
        'type': f'{type(error).__module__}.{type(error).__qualname__}',
        'sqlstate': getattr(error, 'sqlstate', None),
        'message': str(error).strip(),
    }


def main(scenarios):
    """Runs the scenario named by argv[1] (a plain or an async function) and prints its result."""
    if len(sys.argv) != 2 or sys.argv[1] not in scenarios:
        sys.stderr.write(f'usage: {sys.argv[0]} {{{"|".join(scenarios)}}}\n')
        sys.exit(2)
    scenario = scenarios[sys.argv[1]]
    try:
        result = asyncio.run(scenario()) if inspect.iscoroutinefunction(scenario) else scenario()
    except Exception as error:  # noqa: BLE001 - every failure is reported to the test, which asserts on it
        sys.stderr.write(json.dumps({'error': describe(error)}) + '\n')
        sys.exit(1)
    sys.stdout.write(json.dumps(result) + '\n')
