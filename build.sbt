// Canonical build of the Scala half (JVM reductions for the Spark engine).
// The same sources also compile without sbt or network: scripts/build_jar.py uses the
// Scala compiler that ships inside the pyspark wheel.
ThisBuild / scalaVersion := "2.13.18"
ThisBuild / organization := "io.moderndid"

val sparkVersion = "4.3.0"

// The jar's version must equal the Python package's (python/moderndid/_version.py).
val pythonVersion = settingKey[String]("version of the moderndid Python package")
pythonVersion := {
  val text = IO.read(baseDirectory.value / "python" / "moderndid" / "_version.py")
  "__version__ = \"([^\"]+)\"".r.findFirstMatchIn(text).map(_.group(1)).getOrElse("0.0.0")
}

lazy val root = (project in file("."))
  .settings(
    name := "moderndid-spark",
    version := pythonVersion.value,
    Compile / scalaSource := baseDirectory.value / "scala" / "src" / "main" / "scala",
    Test / scalaSource := baseDirectory.value / "scala" / "src" / "test" / "scala",
    libraryDependencies += "org.apache.spark" %% "spark-sql" % sparkVersion % "provided",
    Compile / sourceGenerators += Def.task {
      val file = (Compile / sourceManaged).value / "moderndid" / "BuildInfo.scala"
      IO.write(file, s"""package moderndid\n\nobject BuildInfo { val version: String = "${pythonVersion.value}" }\n""")
      Seq(file)
    }.taskValue
  )
