-- One in-memory estimation per region, on the executors (works under Spark Connect too;
-- register it with moderndid.spark.register_by(spark)). The function partitions the
-- table by the `by` columns itself.
CREATE OR REPLACE TEMPORARY VIEW mpdta_regions AS
SELECT *, CASE WHEN countyreal % 2 = 0 THEN 'even' ELSE 'odd' END AS region FROM mpdta;

SELECT region, `group`, time, att, se
FROM moderndid_att_gt_by(TABLE(mpdta_regions), by => 'region', yname => 'lemp',
                         tname => 'year', idname => 'countyreal', gname => 'first.treat')
ORDER BY region, `group`, time;
