-- Save an estimation as a table (the estimation runs once, when the table is written).
DROP TABLE IF EXISTS moderndid_example_att_gt;

CREATE TABLE moderndid_example_att_gt USING parquet AS
SELECT * FROM moderndid_att_gt(TABLE(mpdta), yname => 'lemp', tname => 'year',
                               idname => 'countyreal', gname => 'first.treat',
                               est_method => 'reg');

SELECT count(*) AS cells, round(avg(att), 6) AS mean_att FROM moderndid_example_att_gt;

DROP TABLE moderndid_example_att_gt;
