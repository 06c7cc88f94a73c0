-- Group-time ATTs of the minimum-wage panel (R did's mpdta), doubly robust, one covariate.
-- Needs a view or table `mpdta` and, once per Python driver, moderndid.spark.register(spark).
SELECT `group`, time, att, se, ci_lower, ci_upper
FROM moderndid_att_gt(
  TABLE(mpdta),
  yname => 'lemp', tname => 'year', idname => 'countyreal', gname => 'first.treat',
  xformla => '~ lpop', est_method => 'dr', control_group => 'nevertreated'
)
ORDER BY `group`, time;
