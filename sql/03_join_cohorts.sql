-- The result is a table like any other: join it with a table of cohort labels.
CREATE OR REPLACE TEMPORARY VIEW cohort_names AS
SELECT * FROM VALUES (2004D, 'early adopters'), (2006D, 'middle'), (2007D, 'late adopters')
  AS t(cohort, name);

SELECT c.name, r.time, r.att, r.se
FROM moderndid_att_gt(TABLE(mpdta), yname => 'lemp', tname => 'year',
                      idname => 'countyreal', gname => 'first.treat') AS r
JOIN cohort_names AS c ON r.`group` = c.cohort
WHERE r.post
ORDER BY c.cohort, r.time;
