-- `tasks_by_lane` served only the lane-depth summary, which reads every task anyway (it
-- groups the whole table by lane); every enqueue, lease and completion paid for it.
DROP INDEX tasks_by_lane;
