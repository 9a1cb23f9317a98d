-- A decision's timeline entries for one order share one row: the row's columns hold the
-- first entry and `more` (a JSON array) the others. The row takes the id of its last entry,
-- so that entries keep the ids one row each would have had (the first is `id` minus the
-- length of `more`). One row and one index entry per decision instead of one per entry.
ALTER TABLE timeline ADD COLUMN more TEXT;
