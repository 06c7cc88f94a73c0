package moderndid

import org.apache.spark.sql.SparkSessionExtensions
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan

/** `spark.sql.extensions=moderndid.Extensions`: registers the aggregators (and
  * `moderndid_version()`) in every session of the application, including the sessions that
  * a Spark Connect server creates for its clients, which have no Python-side JVM gateway to
  * call [[Register.register]] through; and makes every session know the SQL table
  * functions (`moderndid_att_gt`, ...; see org.apache.spark.sql.moderndid.SqlFunctions).
  *
  * The registration rides on a check-rule builder because Spark builds those once per
  * session, when the session first analyses a query, with the session at hand; the rule
  * itself checks nothing. (`injectFunction` would need Spark's internal aggregate
  * expression classes to wrap the typed aggregators.) [[Register.register]] registers
  * only in sessions that do not have the functions yet.
  */
class Extensions extends (SparkSessionExtensions => Unit) {
  override def apply(extensions: SparkSessionExtensions): Unit = {
    extensions.injectCheckRule { session =>
      Register.register(session)
      (_: LogicalPlan) => ()
    }
    org.apache.spark.sql.moderndid.SqlFunctions.descriptions.foreach(extensions.injectTableFunction)
    extensions.injectPlannerStrategy(_ => org.apache.spark.sql.moderndid.SqlFunctionStrategy)
  }
}
