"""PostgreSQL for the test process: Django's own backend, except how the database is emptied
between tests.

Every test that runs consumers, servers or browsers is transactional, so Django empties the
database after it (TransactionTestCase's flush, some 400 times a `make test`). Django flushes
PostgreSQL with one TRUNCATE of every table, which makes new files for each table and index:
0.45 s for this schema on the CI machine, where deleting the few rows a test leaves takes
10 ms. Sequences go on counting either way (tests that need them reset still get TRUNCATE's
RESTART IDENTITY). Every query goes through Django's backend unchanged.
"""

from django.db.backends.postgresql import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade:
            return super().sql_flush(style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        # Every foreign key Django makes on PostgreSQL is DEFERRABLE INITIALLY DEFERRED, and the
        # flush runs in one transaction: the constraints are checked once every table is empty,
        # so the order of the deletes does not matter.
        return [f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};" for table in tables]


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
