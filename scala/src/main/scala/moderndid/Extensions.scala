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
  * expression classes to wrap the typed aggregators.)
  */
class Extensions extends (SparkSessionExtensions => Unit) {
  override def apply(extensions: SparkSessionExtensions): Unit = {
    extensions.injectCheckRule { session =>
      // A new session inherits its parent's registrations: registering again would only
      // log "replaced a previously registered function".
      if (!session.catalog.functionExists("moderndid_version")) Register.register(session)
      (_: LogicalPlan) => ()
    }
  }
}
