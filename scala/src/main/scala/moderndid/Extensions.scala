package moderndid

import org.apache.spark.sql.SparkSessionExtensions
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan

/** `spark.sql.extensions=moderndid.Extensions`: registers the aggregators (and
  * `moderndid_version()`) in every session of the application, including the sessions that
  * a Spark Connect server creates for its clients, which have no Python-side JVM gateway to
  * call [[Register.register]] through.
  *
  * The registration rides on a check-rule builder because Spark builds those once per
  * session, when the session first analyses a query, with the session at hand; the rule
  * itself checks nothing. (`injectFunction` would need Spark's internal aggregate
  * expression classes to wrap the typed aggregators.) A session that inherits its
  * parent's functions registers them again, which Spark logs as a replacement; checking
  * first would need the function registry's internal, version-specific identifiers.
  */
class Extensions extends (SparkSessionExtensions => Unit) {
  override def apply(extensions: SparkSessionExtensions): Unit = {
    extensions.injectCheckRule { session =>
      Register.register(session)
      (_: LogicalPlan) => ()
    }
  }
}
