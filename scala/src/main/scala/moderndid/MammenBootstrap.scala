package moderndid

import org.apache.spark.sql.Encoder
import org.apache.spark.sql.api.java.UDF3
import org.apache.spark.sql.catalyst.encoders.ExpressionEncoder
import org.apache.spark.sql.expressions.Aggregator

/** Counter-based Mammen multipliers, bit-identical to moderndid.core.multipliers (NumPy).
  *
  * The specification and its golden values are in docs/multipliers.md: a multiplier is a
  * pure function of (seed, unit or cluster key, draw index), so neither partitioning nor
  * the language changes a draw. All arithmetic wraps modulo 2^64 (Scala `Long`), right
  * shifts are logical (`>>>`).
  */
object Mammen {
  final val Gamma: Long = 0x9E3779B97F4A7C15L
  final val M1: Long = 0xBF58476D1CE4E5B9L
  final val M2: Long = 0x94D049BB133111EBL
  /** P(LOW) * 2^53, an exact integer: `(u >>> 11) >= Threshold` means the HIGH value. */
  final val Threshold: Long = 6517670609419126L
  final val Low: Double = (1.0 - math.sqrt(5.0)) / 2.0
  final val High: Double = (1.0 + math.sqrt(5.0)) / 2.0

  def mix(z0: Long): Long = {
    var z = z0
    z = (z ^ (z >>> 30)) * M1
    z = (z ^ (z >>> 27)) * M2
    z ^ (z >>> 31)
  }

  def seedState(seed: Long): Long = mix(seed + Gamma)

  def unitState(seedState: Long, key: Long): Long = mix(key ^ seedState)

  def isHigh(unitState: Long, draw: Long): Boolean =
    (mix(unitState + (draw + 1) * Gamma) >>> 11) >= Threshold

  /** The multiplier itself: `Low + mask * (High - Low)`, the same double NumPy computes. */
  def multiplier(seed: Long, key: Long, draw: Long): Double =
    if (isHigh(unitState(seedState(seed), key), draw)) Low + (High - Low) else Low
}

/** Buffer of the bootstrap reduction, per partition (ascending `parts`, as in
  * [[PartSums]]): the sum of the partition's rows `z` (`total(i)`, length K) and, for each
  * draw b, the sum of its rows whose multiplier is HIGH (`high(i)`, B x K row-major).
  */
final case class MammenBuffer(seed: Long, biters: Int, parts: Array[Int],
                              total: Array[Array[Double]], high: Array[Array[Double]])

/** One block of units from a partition kernel: the partition (`spark_partition_id()` of
  * its task), the units' 64-bit multiplier keys and their rows `z` (keys.length x K,
  * row-major). Null `z` marks a row that carries no block.
  */
final case class MammenInput(seed: Long, biters: Int, part: Int, keys: Array[Long],
                             z: Array[Double])

/** Fused multiplier-bootstrap reduction: `sum_i v_ib z_i` for b = 0 until biters.
  *
  * Exploits the two-point structure of Mammen's weights (DESIGN.md section 5):
  * `v = Low + (High - Low) 1{high}`, so only the rows drawn HIGH are added per draw and the
  * result is one affine step, `Low * total + (High - Low) * high`, in `finish`. Output: the
  * B x K sums, row-major (empty when no block arrived).
  *
  * Deterministic as [[ArraySum]]: the buffer keeps the sums of each partition apart and
  * `finish` adds them in ascending partition order, whatever order the tasks end in.
  * Memory: partitions x (B + 1) x K doubles in the buffer that merges every task's (the
  * driver's): 0.4 MB per partition for 999 draws and 50 cells.
  */
object MammenBootstrap extends Aggregator[MammenInput, MammenBuffer, Array[Double]] {
  def zero: MammenBuffer =
    MammenBuffer(0L, 0, Array.emptyIntArray, Array.empty[Array[Double]], Array.empty[Array[Double]])

  private def isEmpty(b: MammenBuffer): Boolean = b.parts.length == 0

  private def width(b: MammenBuffer): Int = b.total(0).length

  def reduce(acc: MammenBuffer, in: MammenInput): MammenBuffer = {
    if (in == null || in.z == null || in.keys == null || in.keys.length == 0) return acc
    val n = in.keys.length
    require(in.z.length % n == 0, s"block of ${in.z.length} values for $n keys")
    val w = in.z.length / n
    require(isEmpty(acc) || (acc.seed == in.seed && acc.biters == in.biters && width(acc) == w),
            "bootstrap blocks with different seeds, draw counts or widths")
    val at = java.util.Arrays.binarySearch(acc.parts, in.part)
    val buf =
      if (at >= 0) acc
      else {
        val slot = -at - 1
        MammenBuffer(in.seed, in.biters, Parts.insert(acc.parts, slot, in.part),
                     Parts.insert(acc.total, slot, new Array[Double](w)),
                     Parts.insert(acc.high, slot, new Array[Double](in.biters * w)))
      }
    val i = java.util.Arrays.binarySearch(buf.parts, in.part)
    accumulate(buf.total(i), buf.high(i), buf.seed, buf.biters, in.keys, in.z, w)
    buf
  }

  /** Units handled together: their draws are packed as bits of one `Long` per draw. */
  private final val BlockUnits = 64

  private def accumulate(total: Array[Double], high: Array[Double], seed: Long, biters: Int,
                         keys: Array[Long], z: Array[Double], width: Int): Unit = {
    val seedState = Mammen.seedState(seed)
    val masks = new Array[Long](biters)
    val table = new Array[Double]((1 << TableUnits) * width)  // reused by every unit group
    var row = 0
    while (row < z.length) { addRow(total, 0, z, row, width); row += width }
    var lo = 0
    while (lo < keys.length) {
      val hi = math.min(lo + BlockUnits, keys.length)
      java.util.Arrays.fill(masks, 0L)
      var i = lo
      while (i < hi) {
        // u(b) = mix(unitState + (b + 1) * Gamma): step the counter instead of multiplying.
        var counter = Mammen.unitState(seedState, keys(i))
        val position = i - lo
        var b = 0
        while (b < biters) {
          counter += Mammen.Gamma
          // Branch-free `if ((mix >>> 11) >= Threshold) set the bit`: both sides are below
          // 2^53, so the sign of their difference decides (a branch here mispredicts 28%).
          val low = ((Mammen.mix(counter) >>> 11) - Mammen.Threshold) >>> 63
          masks(b) |= (low ^ 1L) << position
          b += 1
        }
        i += 1
      }
      addHighRows(high, masks, table, z, lo, hi - lo, width, biters)
      lo = hi
    }
  }

  /** Units per subset-sum table: 2^8 partial sums of 8 rows. */
  private final val TableUnits = 8

  /** Adds, for every draw, the rows of the block's units drawn HIGH (bits of `masks(b)`).
    *
    * Four Russians: for each group of 8 units, the sums of every subset of their rows are
    * tabulated once (256 rows, one row addition each), then each draw adds the single row of
    * its subset, instead of about 0.28 x 8 row additions: 1.7x fewer additions for 999
    * draws. The order of additions differs from NumPy's, so sums agree to rounding.
    */
  private def addHighRows(high: Array[Double], masks: Array[Long], table: Array[Double],
                          z: Array[Double], first: Int, count: Int, width: Int,
                          biters: Int): Unit = {
    var group = 0
    while (group * TableUnits < count) {
      val units = math.min(TableUnits, count - group * TableUnits)
      val shift = group * TableUnits
      var subset = 1
      while (subset < (1 << units)) {
        val rest = subset & (subset - 1)
        val unit = first + shift + Integer.numberOfTrailingZeros(subset)
        copyAddRow(table, subset * width, table, rest * width, z, unit * width, width)
        subset += 1
      }
      val bits = (1L << units) - 1
      var b = 0
      while (b < biters) {
        val pick = ((masks(b) >>> shift) & bits).toInt
        if (pick != 0) addRow(high, b * width, table, pick * width, width)
        b += 1
      }
      group += 1
    }
  }

  private def copyAddRow(dst: Array[Double], dstOff: Int, a: Array[Double], aOff: Int,
                         b: Array[Double], bOff: Int, len: Int): Unit = {
    var j = 0
    while (j < len) { dst(dstOff + j) = a(aOff + j) + b(bOff + j); j += 1 }
  }

  // A small counted loop of its own, which the JIT compiles to vector instructions.
  private def addRow(dst: Array[Double], dstOff: Int, src: Array[Double], srcOff: Int,
                     len: Int): Unit = {
    var j = 0
    while (j < len) { dst(dstOff + j) += src(srcOff + j); j += 1 }
  }

  /** The partitions of both, each partition's sums added (a partition in both is one
    * whose rows were reduced in two buffers).
    */
  def merge(a: MammenBuffer, b: MammenBuffer): MammenBuffer = {
    if (isEmpty(a)) b
    else if (isEmpty(b)) a
    else {
      require(a.seed == b.seed && a.biters == b.biters && width(a) == width(b),
              "bootstrap buffers with different seeds, draw counts or widths")
      var out = a
      var k = 0
      while (k < b.parts.length) {
        val at = java.util.Arrays.binarySearch(out.parts, b.parts(k))
        if (at >= 0) {
          Parts.add(out.total(at), b.total(k))
          Parts.add(out.high(at), b.high(k))
        } else {
          val slot = -at - 1
          out = MammenBuffer(out.seed, out.biters, Parts.insert(out.parts, slot, b.parts(k)),
                             Parts.insert(out.total, slot, b.total(k)),
                             Parts.insert(out.high, slot, b.high(k)))
        }
        k += 1
      }
      out
    }
  }

  /** The partitions' sums added in ascending partition order, then the affine step. */
  def finish(acc: MammenBuffer): Array[Double] = {
    if (isEmpty(acc)) return Array.emptyDoubleArray
    val w = width(acc)
    val total = Parts.fold(acc.total)
    val high = Parts.fold(acc.high)
    val spread = Mammen.High - Mammen.Low
    val out = new Array[Double](high.length)
    var i = 0
    while (i < out.length) {
      out(i) = Mammen.Low * total(i % w) + spread * high(i)
      i += 1
    }
    out
  }

  def bufferEncoder: Encoder[MammenBuffer] = MammenEncoders.buffer
  def outputEncoder: Encoder[Array[Double]] = Encoders.doubleArray
}

/** Single multipliers as a SQL function, `moderndid_mammen_multiplier(seed, key, draw)`:
  * lets tests check the JVM draws against the NumPy golden values bit for bit.
  */
object MammenMultiplier extends UDF3[java.lang.Long, java.lang.Long, java.lang.Long, java.lang.Double] {
  def call(seed: java.lang.Long, key: java.lang.Long, draw: java.lang.Long): java.lang.Double =
    Mammen.multiplier(seed, key, draw)
}

private object MammenEncoders {
  lazy val buffer: Encoder[MammenBuffer] = ExpressionEncoder[MammenBuffer]()
  lazy val input: Encoder[MammenInput] = ExpressionEncoder[MammenInput]()
}
