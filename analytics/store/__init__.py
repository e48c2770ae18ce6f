"""The metric store: write path, partitions, compaction, roll-ups, retention, reads.

Hot points are one row each (PostgreSQL: a table partitioned by day); closed days are
compacted into one encoded chunk per series and day plus 5-minute and 1-hour roll-ups;
retention follows each tenant's plan. Reads stitch hot and cold transparently.
"""
