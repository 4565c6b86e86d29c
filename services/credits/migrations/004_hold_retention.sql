-- Finished holds are kept for replays and rebuilds, then pruned by the sweeper once no copy of
-- their events can still be delivered (the CREDITS stream keeps messages 7 days). This index
-- finds the oldest finished holds across customers.
CREATE INDEX holds_prunable ON holds (finished_at) WHERE status <> 'active';
