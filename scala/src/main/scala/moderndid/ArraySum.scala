package moderndid

import org.apache.spark.sql.{Encoder, SparkSession, functions}
import org.apache.spark.sql.catalyst.encoders.ExpressionEncoder
import org.apache.spark.sql.expressions.Aggregator
import org.apache.spark.sql.types.DataTypes

/** Element-wise sum of equal-length double arrays: reduces the partial sums that the Python
  * partition kernels emit (moment sums, Gram matrices, bootstrap sums) inside the JVM, so
  * the Python driver receives one small array per name.
  */
object ArraySum extends Aggregator[Array[Double], Array[Double], Array[Double]] {
  def zero: Array[Double] = Array.emptyDoubleArray

  // Null values are rows of another kind in the same aggregation (bootstrap blocks).
  def reduce(acc: Array[Double], value: Array[Double]): Array[Double] =
    if (value == null) acc else merge(acc, value)

  def merge(a: Array[Double], b: Array[Double]): Array[Double] = {
    if (a.length == 0) b.clone()
    else if (b.length == 0) a
    else {
      require(a.length == b.length, s"array lengths differ: ${a.length} and ${b.length}")
      var i = 0
      while (i < a.length) { a(i) += b(i); i += 1 }
      a
    }
  }

  def finish(acc: Array[Double]): Array[Double] = acc
  def bufferEncoder: Encoder[Array[Double]] = Encoders.doubleArray
  def outputEncoder: Encoder[Array[Double]] = Encoders.doubleArray
}

/** Element-wise maximum of equal-length double arrays. */
object ArrayMax extends Aggregator[Array[Double], Array[Double], Array[Double]] {
  def zero: Array[Double] = Array.emptyDoubleArray

  def reduce(acc: Array[Double], value: Array[Double]): Array[Double] =
    if (value == null) acc else merge(acc, value)

  def merge(a: Array[Double], b: Array[Double]): Array[Double] = {
    if (a.length == 0) b.clone()
    else if (b.length == 0) a
    else {
      require(a.length == b.length, s"array lengths differ: ${a.length} and ${b.length}")
      var i = 0
      while (i < a.length) { a(i) = math.max(a(i), b(i)); i += 1 }
      a
    }
  }

  def finish(acc: Array[Double]): Array[Double] = acc
  def bufferEncoder: Encoder[Array[Double]] = Encoders.doubleArray
  def outputEncoder: Encoder[Array[Double]] = Encoders.doubleArray
}

/** One encoder for every use: building an ``ExpressionEncoder`` goes through Scala
  * reflection, which cost about 0.3 s per query when the aggregators built theirs on each call.
  */
private object Encoders {
  lazy val doubleArray: Encoder[Array[Double]] = ExpressionEncoder[Array[Double]]()
}

/** Registers the aggregators as SQL functions of a session. */
object Register {
  /** The moderndid version this jar was built for; the Python side checks it. */
  val version: String = BuildInfo.version

  // Sessions that have the functions. Registering again would replace them with a warning
  // on every fit; asking the catalog instead would analyse a query, and the session
  // extension registers from inside analysis (endless recursion).
  private val registered =
    java.util.Collections.synchronizedMap(new java.util.WeakHashMap[SparkSession, java.lang.Boolean]())

  /** Registers the functions in a session, once. */
  def register(spark: SparkSession): String = {
    if (registered.putIfAbsent(spark, java.lang.Boolean.TRUE) == null) registerAll(spark)
    version
  }

  private def registerAll(spark: SparkSession): Unit = {
    spark.udf.register("moderndid_array_sum", functions.udaf(ArraySum))
    spark.udf.register("moderndid_array_max", functions.udaf(ArrayMax))
    spark.udf.register("moderndid_mammen_bootstrap",
                       functions.udaf(MammenBootstrap, MammenEncoders.input))
    spark.udf.register("moderndid_mammen_multiplier", MammenMultiplier, DataTypes.DoubleType)
    // lets a client without a JVM gateway (Spark Connect) check the jar's version
    spark.udf.register("moderndid_version", functions.udf(() => version))
  }
}
