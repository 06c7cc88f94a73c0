package moderndid

import org.apache.spark.sql.{Encoder, SparkSession, functions}
import org.apache.spark.sql.catalyst.encoders.ExpressionEncoder
import org.apache.spark.sql.expressions.Aggregator
import org.apache.spark.sql.types.DataTypes

/** One partition's array: the input of [[ArraySum]] (`part` is `spark_partition_id()` of
  * the task that made `value`). Null `value` marks a row of another kind.
  */
final case class PartArray(part: Int, value: Array[Double])

/** Arrays keyed by partition, ascending `parts`: `sums(i)` is the sum of the rows of
  * partition `parts(i)`.
  */
final case class PartSums(parts: Array[Int], sums: Array[Array[Double]])

/** Helpers for buffers keyed by partition. */
private[moderndid] object Parts {
  /** `xs` with `x` inserted at `at`. */
  def insert[T: scala.reflect.ClassTag](xs: Array[T], at: Int, x: T): Array[T] = {
    val out = new Array[T](xs.length + 1)
    System.arraycopy(xs, 0, out, 0, at)
    out(at) = x
    System.arraycopy(xs, at, out, at + 1, xs.length - at)
    out
  }

  def add(dst: Array[Double], src: Array[Double]): Unit = {
    require(dst.length == src.length, s"array lengths differ: ${dst.length} and ${src.length}")
    var i = 0
    while (i < dst.length) { dst(i) += src(i); i += 1 }
  }

  /** The arrays' sum in the order given (a left fold from a copy of the first). */
  def fold(arrays: Array[Array[Double]]): Array[Double] = {
    if (arrays.length == 0) return Array.emptyDoubleArray
    val out = arrays(0).clone()
    var k = 1
    while (k < arrays.length) { add(out, arrays(k)); k += 1 }
    out
  }
}

/** Element-wise sum of equal-length double arrays: reduces the partial sums that the Python
  * partition kernels emit (moment sums, Gram matrices) inside the JVM, so the Python driver
  * receives one small array per name.
  *
  * Deterministic: Spark merges the tasks' buffers in the order the tasks end (observed
  * metrics aggregated over all attempts, shuffle fetches on a cluster), and a floating-point
  * sum depends on the order of its terms. So the buffer keeps one array per partition
  * (rows of one partition are added in the order they arrive, which their task fixes) and
  * `finish` adds them in ascending partition order: a rerun, a retried task or a slow
  * executor gives the same digits. Memory: partitions x array length doubles in the buffer
  * that merges every task's (the driver's, for observed metrics).
  */
object ArraySum extends Aggregator[PartArray, PartSums, Array[Double]] {
  def zero: PartSums = PartSums(Array.emptyIntArray, Array.empty[Array[Double]])

  def reduce(acc: PartSums, in: PartArray): PartSums =
    if (in == null || in.value == null) acc else put(acc, in.part, in.value, copy = true)

  /** Adds `value` to partition `part`'s array, a new entry when there is none. */
  private def put(acc: PartSums, part: Int, value: Array[Double], copy: Boolean): PartSums = {
    val at = java.util.Arrays.binarySearch(acc.parts, part)
    if (at >= 0) {
      Parts.add(acc.sums(at), value)
      acc
    } else {
      val slot = -at - 1
      PartSums(Parts.insert(acc.parts, slot, part),
               Parts.insert(acc.sums, slot, if (copy) value.clone() else value))
    }
  }

  def merge(a: PartSums, b: PartSums): PartSums = {
    var out = a
    var k = 0
    while (k < b.parts.length) { out = put(out, b.parts(k), b.sums(k), copy = false); k += 1 }
    out
  }

  def finish(acc: PartSums): Array[Double] = Parts.fold(acc.sums)
  def bufferEncoder: Encoder[PartSums] = Encoders.partSums
  def outputEncoder: Encoder[Array[Double]] = Encoders.doubleArray
}

/** Element-wise maximum of equal-length double arrays (order does not change a maximum). */
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
  lazy val partArray: Encoder[PartArray] = ExpressionEncoder[PartArray]()
  lazy val partSums: Encoder[PartSums] = ExpressionEncoder[PartSums]()
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
    spark.udf.register("moderndid_array_sum", functions.udaf(ArraySum, Encoders.partArray))
    spark.udf.register("moderndid_array_max", functions.udaf(ArrayMax))
    spark.udf.register("moderndid_mammen_bootstrap",
                       functions.udaf(MammenBootstrap, MammenEncoders.input))
    spark.udf.register("moderndid_mammen_multiplier", MammenMultiplier, DataTypes.DoubleType)
    // lets a client without a JVM gateway (Spark Connect) check the jar's version
    spark.udf.register("moderndid_version", functions.udf(() => version))
  }
}
