"""Exit 0 when the PostgreSQL and Redis given on the command line both answer, else 1."""

import sys

import psycopg
import redis


def main(database_url: str, redis_url: str) -> int:
    try:
        with psycopg.connect(database_url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except Exception as error:
        print(f"service check: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
