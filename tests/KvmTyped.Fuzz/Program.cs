using System.Globalization;
using SharpFuzz;

namespace KvmTyped.Fuzz;

/// <summary><c>KvmTyped.Fuzz run TARGET</c> (under afl-fuzz, through run.sh), <c>replay TARGET PATH...</c>,
/// <c>seeds OUTDIR NAMELISTDIR</c>, <c>list</c>.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        switch (args)
        {
            case ["list"]:
                foreach (var t in FuzzTargets.All)
                    Console.WriteLine($"{t.Name,-18} {t.What}");
                return 0;
            case ["run", var name]:
                return Run(FuzzTargets.Get(name));
            case ["replay", var name, .. var paths] when paths.Length > 0:
                return Replay(FuzzTargets.Get(name), paths);
            case ["seeds", var outDir, var namelistDir]:
                Seeds.Build(outDir, namelistDir);
                return 0;
            default:
                Console.Error.WriteLine("usage: KvmTyped.Fuzz list | run TARGET | replay TARGET PATH... | seeds OUTDIR NAMELISTDIR");
                return 2;
        }
    }

    /// <summary>The fork-server loop: every input through the target; an exception that is not the library's own
    /// escapes and afl-fuzz records a crash. The target runs in a child process, so that what ends a process (a stack
    /// overflow, a fatal out-of-memory) is recorded as a crash with its input too, instead of taking down the server.</summary>
    private static int Run(FuzzTarget target)
    {
        Fuzzer.OutOfProcess.Run(stream =>
        {
            using var ms = new MemoryStream();
            stream.CopyTo(ms);
            FuzzTargets.Execute(target, ms.ToArray());
        });
        return 0;
    }

    private static int Replay(FuzzTarget target, string[] paths)
    {
        var failed = 0;
        foreach (var file in paths.SelectMany(p => Directory.Exists(p) ? Directory.EnumerateFiles(p).Order(StringComparer.Ordinal) : (IEnumerable<string>)[p]))
        {
            try
            {
                var o = FuzzTargets.Execute(target, File.ReadAllBytes(file));
                var over = o.AllocatedBytes > target.MaxAllocatedBytes || (target.MaxReads > 0 && o.Reads > target.MaxReads);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{(over ? "OVER" : "ok  ")} {Path.GetFileName(file)}: {o.AllocatedBytes} bytes, {o.Reads} reads, {(o.Error is null ? "no error" : o.Error.GetType().Name + ": " + o.Error.Message)}"));
                if (over)
                    failed++;
            }
            catch (Exception e)
            {
                Console.WriteLine($"FAIL {Path.GetFileName(file)}: {e}");
                failed++;
            }
        }
        return failed == 0 ? 0 : 1;
    }
}
