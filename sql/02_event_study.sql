-- Estimation and aggregation in one call: the overall ATT and one row per event time,
-- with a multiplier bootstrap and a uniform band (reproducible with random_state).
SELECT level, value AS event_time, att, se, ci_lower, ci_upper, critical_value
FROM moderndid_aggte(
  TABLE(SELECT * FROM mpdta WHERE year >= 2003),
  'lemp', 'year', 'countyreal', 'first.treat',
  boot => true, biters => 499, random_state => 42, type => 'dynamic'
)
ORDER BY level DESC, value;
