-- Every lease and completion updates each index of `tasks`; two of them served rare reads.
-- Releasing an owner's leases (at shutdown) scans the table instead, and the lease query
-- finds a key's leased task through `tasks_by_key` (a key has few tasks).
DROP INDEX tasks_leased_by_key;
DROP INDEX tasks_by_owner;
