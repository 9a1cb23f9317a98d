-- A stream's version is its newest event's: the `(stream, version)` index of `events`
-- answers it, and only the writer thread appends, so nothing can come between its check and
-- its inserts. The `streams` table said the same thing again at the cost of a write per
-- decision, most often to a page no other write of its commit touched (one more page in the
-- log per step). Events are never deleted, so no version is lost.
DROP TABLE streams;
