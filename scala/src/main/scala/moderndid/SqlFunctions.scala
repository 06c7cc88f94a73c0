package org.apache.spark.sql.moderndid

// Lives in Spark's sql package for Dataset.ofRows (private[sql]): the table argument of a
// call is a logical plan that must become a DataFrame for the Python estimator.

import scala.collection.mutable
import scala.jdk.CollectionConverters._

import org.apache.spark.rdd.RDD
import org.apache.spark.sql.DataFrame
import org.apache.spark.sql.catalyst.{FunctionIdentifier, InternalRow}
import org.apache.spark.sql.catalyst.analysis.MultiInstanceRelation
import org.apache.spark.sql.catalyst.expressions.{Attribute, AttributeReference, Expression, ExpressionInfo, FunctionTableSubqueryArgumentExpression, NamedArgumentExpression}
import org.apache.spark.sql.catalyst.plans.logical.{LeafNode, LogicalPlan, Statistics}
import org.apache.spark.sql.catalyst.util.ArrayData
import org.apache.spark.sql.classic
import org.apache.spark.sql.execution.{LeafExecNode, SparkPlan, SparkStrategy}
import org.apache.spark.sql.types.{DataType, StructType}
import org.apache.spark.unsafe.types.UTF8String

/** The Python driver's side of the SQL functions (implemented in moderndid.spark.sql). */
trait SqlBridge {
  /** Checks a call at analysis time (options and columns; runs no job): an error message,
    * or null when the call is valid. */
  def check(function: String, input: DataFrame, arguments: java.util.Map[String, Object]): String

  /** Runs the estimation and returns its result, cast to the function's declared schema. */
  def run(function: String, input: DataFrame, arguments: java.util.Map[String, Object]): DataFrame
}

/** A moderndid table function as the Python side declares it: its output schema and its
  * parameters in positional order (from the Python signatures). */
case class SqlFunction(name: String, outputDdl: String, parameters: Seq[String], usage: String) {
  lazy val schema: StructType = StructType.fromDDL(outputDdl)
}

object SqlFunctions {
  @volatile private var bridge: SqlBridge = _

  /** Called by moderndid.spark.register: the Python driver that runs the estimations. */
  def setBridge(b: SqlBridge): Unit = { bridge = b }

  def hasBridge: Boolean = bridge != null

  /** The functions and what SHOW FUNCTIONS / DESCRIBE FUNCTION say of them (known without
    * Python, for sessions created with the extensions setting). */
  val usages: Seq[(String, String)] = Seq(
    "moderndid_att_gt" -> ("_FUNC_(TABLE(panel), yname, tname, idname, gname, xformla, ...) - " +
      "group-time average treatment effects ATT(g,t) (Callaway & Sant'Anna), estimated " +
      "distributed; arguments are att_gt's, by name (yname => 'y') or position"),
    "moderndid_aggte" -> ("_FUNC_(TABLE(panel), yname, tname, idname, gname, ..., type => " +
      "'dynamic') - att_gt then aggte in one call: the overall row and one row per event " +
      "time, group or period"),
    "moderndid_ddd" -> ("_FUNC_(TABLE(panel), yname, tname, idname, gname, pname, ...) - " +
      "triple-difference ATT(g,t), estimated distributed; arguments are ddd's"),
    "moderndid_agg_ddd" -> ("_FUNC_(TABLE(panel), yname, tname, idname, gname, pname, ..., " +
      "type => 'eventstudy') - ddd then agg_ddd in one call"))

  private val functions = mutable.LinkedHashMap[String, SqlFunction]()

  /** Declares a function's schema and parameters (moderndid.spark.register does it). */
  def declare(name: String, outputDdl: String, parameters: java.util.List[String],
              usage: String): Unit = synchronized {
    functions(name) = SqlFunction(name, outputDdl, parameters.asScala.toSeq, usage)
  }

  private def declared(name: String): Option[SqlFunction] = synchronized { functions.get(name) }

  // Temporary functions live in system.session; the registry wants the 3-part name.
  private def identifier(name: String): FunctionIdentifier =
    FunctionIdentifier(name, Some("session"), Some("system"))

  private def info(name: String, usage: String): ExpressionInfo =
    new ExpressionInfo(classOf[SqlFunctionCall].getName, null, name, usage,
      "\n    Arguments:\n      * data - TABLE(name) or TABLE(query): the long input rows\n" +
        "      * the other arguments are those of the Python function (moderndid." +
        name.stripPrefix("moderndid_") + "), constants, by name or position\n",
      "\n    Examples:\n      > SELECT * FROM " + name + "(TABLE(panel), yname => 'y', " +
        "tname => 'time', idname => 'id', gname => 'group');\n",
      "", "", "", "", "scala_udf")

  /** Registers the functions in a session's table-function registry (a new registration
    * replaces the old one without a warning) and the strategy that plans them. */
  def register(spark: org.apache.spark.sql.SparkSession): Unit = {
    val session = spark.asInstanceOf[classic.SparkSession]
    val registry = session.sessionState.tableFunctionRegistry
    usages.foreach { case (name, usage) =>
      registry.registerFunction(identifier(name), info(name, usage), builder(name))
    }
    if (!session.experimental.extraStrategies.contains(SqlFunctionStrategy)) {
      session.experimental.extraStrategies =
        session.experimental.extraStrategies :+ SqlFunctionStrategy
    }
  }

  /** What the session extension injects (moderndid.Extensions). */
  def descriptions: Seq[(FunctionIdentifier, ExpressionInfo, Seq[Expression] => LogicalPlan)] =
    usages.map { case (name, usage) => (FunctionIdentifier(name), info(name, usage), builder(name)) }

  private def needPython(name: String): Nothing =
    throw new IllegalArgumentException(s"$name: the estimation runs in the Python driver of " +
      "this Spark application: call moderndid.spark.register(spark) in Python first. SQL " +
      "clients without a Python driver (Spark Connect, SQL warehouses, JDBC) can use " +
      "moderndid_att_gt_by, which runs on the executors, or the Python API")

  private def builder(name: String): Seq[Expression] => LogicalPlan = (args: Seq[Expression]) => {
    val f = declared(name).getOrElse(needPython(name))
    if (bridge == null) needPython(name)
    build(f, args)
  }

  private def fail(f: SqlFunction, message: String): Nothing =
    throw new IllegalArgumentException(s"${f.name}: $message")

  private def build(f: SqlFunction, args: Seq[Expression]): LogicalPlan = {
    var input: Option[LogicalPlan] = None
    val values = mutable.LinkedHashMap[String, Object]()
    var position = 0
    def set(name: String, value: Expression): Unit = {
      if (!f.parameters.contains(name)) {
        fail(f, s"unknown argument '$name'; arguments: data, ${f.parameters.mkString(", ")}")
      }
      if (values.contains(name)) fail(f, s"argument '$name' is given twice")
      values(name) = literal(f, name, value)
    }
    args.foreach {
      case t: FunctionTableSubqueryArgumentExpression if input.isEmpty && values.isEmpty =>
        input = Some(t.plan)
      case NamedArgumentExpression("data", t: FunctionTableSubqueryArgumentExpression) =>
        input = Some(t.plan)
      case NamedArgumentExpression(name, value) => set(name, value)
      case _: FunctionTableSubqueryArgumentExpression =>
        fail(f, "the table argument must come first: " + f.usage)
      case value =>
        if (position >= f.parameters.size) fail(f, s"too many arguments: ${f.usage}")
        set(f.parameters(position), value)
        position += 1
    }
    val plan = input.getOrElse(fail(f, s"the first argument must be TABLE(name) or TABLE(query): ${f.usage}"))
    val b = bridge
    if (b == null) needPython(f.name)
    val session = classic.SparkSession.active
    val problem = b.check(f.name, classic.Dataset.ofRows(session, plan), values.asJava)
    if (problem != null) fail(f, problem)
    SqlFunctionCall(f.name, plan, values.toMap,
      f.schema.fields.map(s => AttributeReference(s.name, s.dataType, s.nullable)()).toSeq)
  }

  /** A constant argument as a JVM value py4j hands to Python (strings, numbers, booleans,
    * null, arrays of those). */
  private def literal(f: SqlFunction, name: String, value: Expression): Object = {
    if (!value.foldable) {
      fail(f, s"argument '$name' must be a constant (a literal), got ${value.sql}")
    }
    convert(value.eval(), value.dataType)
  }

  /** The moderndid error in a Python traceback ("moderndid-sql-error: Class: message"). */
  private def pythonError(function: String, text: String): String = {
    val marker = "moderndid-sql-error: "
    val at = text.lastIndexOf(marker)
    if (at < 0) s"$function failed in the Python driver: $text"
    else s"$function: " + text.substring(at + marker.length).linesIterator.next()
  }

  private def convert(value: Any, dataType: DataType): Object = (value, dataType) match {
    case (null, _) => null
    case (s: UTF8String, _) => s.toString
    case (a: ArrayData, org.apache.spark.sql.types.ArrayType(element, _)) =>
      a.toSeq[Any](element).map(v => convert(v, element)).asJava
    case (d: org.apache.spark.sql.types.Decimal, _) => java.lang.Double.valueOf(d.toDouble)
    case (v, _) => v.asInstanceOf[Object]
  }

  private[moderndid] def execute(function: String, session: classic.SparkSession,
                                 input: LogicalPlan,
                                 arguments: Map[String, Object]): RDD[InternalRow] = {
    val b = bridge
    if (b == null) needPython(function)
    val result = try {
      b.run(function, classic.Dataset.ofRows(session, input), arguments.asJava)
    } catch {
      // py4j hands back the Python traceback: keep the line that says what went wrong
      case e: py4j.Py4JException => throw new IllegalArgumentException(
        pythonError(function, String.valueOf(e.getMessage)), e)
    }
    result.asInstanceOf[classic.Dataset[_]].queryExecution.toRdd
  }
}

/** The logical plan of a call: only its schema is known at analysis; the estimation runs
  * when the query executes (EXPLAIN runs nothing). */
case class SqlFunctionCall(function: String, input: LogicalPlan, arguments: Map[String, Object],
                           output: Seq[Attribute])
  extends LeafNode with MultiInstanceRelation {

  override def newInstance(): SqlFunctionCall = copy(output = output.map(_.newInstance()))

  // A result table is small (one row per cell or aggregate): joins may broadcast it.
  override def computeStats(): Statistics = Statistics(sizeInBytes = BigInt(1L << 20))

  override def simpleString(maxFields: Int): String =
    s"$function(${arguments.map { case (k, v) => s"$k => $v" }.mkString(", ")})"
}

// The input plan and arguments are used on the driver only: transient, because the node is
// serialized with the closures of whole-stage code generation above it.
case class SqlFunctionExec(function: String, @transient input: LogicalPlan,
                           @transient arguments: Map[String, Object],
                           output: Seq[Attribute]) extends LeafExecNode {
  override protected def doExecute(): RDD[InternalRow] =
    SqlFunctions.execute(function, session, input, arguments)

  override def simpleString(maxFields: Int): String = s"ModerndidTableFunction $function"
}

object SqlFunctionStrategy extends SparkStrategy {
  def apply(plan: LogicalPlan): Seq[SparkPlan] = plan match {
    case c: SqlFunctionCall => SqlFunctionExec(c.function, c.input, c.arguments, c.output) :: Nil
    case _ => Nil
  }
}
