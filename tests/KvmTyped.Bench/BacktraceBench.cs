using System.Diagnostics;
using System.Globalization;
using KvmTyped.Cli;
using KvmTyped.TestSupport;

namespace KvmTyped.Bench;

/// <summary>The <c>bt</c> bench command: what <c>kvmtyped bt --all</c> costs beside <c>kvmtyped ps</c> on the same dump,
/// measured in the same run. Both are the CLI's own commands run in this process (open, walk, format; output to a
/// counting writer), so the figures hold everything a user waits for but the process start-up.</summary>
/// <remarks><c>dotnet run -c Release --project tests/KvmTyped.Bench -- bt [rounds] [DUMP NAMELIST]</c>; default the
/// sample (samples/linux-amd64) and 15 rounds. The issue's budget: bt --all at most twice ps.</remarks>
internal static class BacktraceBench
{
    /// <summary>The most bt --all may cost, as a multiple of ps.</summary>
    private const double Budget = 2.0;

    /// <summary>Runs the bench; returns the exit code (1 when the commands fail or disagree, or the budget is exceeded).</summary>
    public static int Run(string[] args)
    {
        var rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 15;
        var dump = args.Length > 2 ? args[1] : Path.Combine(Fixtures.RepoRoot, "samples/linux-amd64/vmcore.kdump");
        var map = args.Length > 2 ? args[2] : Path.Combine(Fixtures.RepoRoot, "samples/linux-amd64/System.map-6.1.0-56-amd64");
        File.ReadAllBytes(dump); // warm the page cache, as `cat FILE > /dev/null` would
        string[] common = ["-n", map, "-c", dump];
        (string Name, string[] Args)[] commands =
        [
            ("ps", ["ps", .. common]),
            ("bt --all", ["bt", "--all", .. common]),
            ("ps --json", ["ps", "--json", .. common]),
            ("bt --all --json", ["bt", "--all", "--json", .. common]),
        ];
        Console.WriteLine($"== bt --all beside ps: {Path.GetFileName(dump)} with {Path.GetFileName(map)}, {rounds} alternating rounds, in process ==");

        // The first run of each in the process (JIT included); its output checks that bt --all covers every task ps lists.
        var first = new Dictionary<string, Timing>();
        foreach (var (name, a) in commands)
            first[name] = Once(a);
        var psTasks = first["ps"].Lines - 1;
        var btTasks = first["bt --all"].Headers;
        Console.WriteLine($"first run in the process: {string.Join(", ", commands.Select(c => $"{c.Name} {first[c.Name].WallMs:F0} ms"))}");
        Console.WriteLine($"ps lists {psTasks} tasks; bt --all prints {btTasks} traces, {first["bt --all"].Lines} lines");
        if (psTasks != btTasks || psTasks <= 0)
        {
            Console.WriteLine("FAIL: bt --all does not print one trace per task ps lists");
            return 1;
        }

        var runs = commands.ToDictionary(c => c.Name, _ => new List<Timing>());
        for (var round = 0; round < rounds; round++)
        {
            foreach (var (name, a) in commands)
            {
                var r = Once(a);
                if (r.Lines != first[name].Lines)
                {
                    Console.WriteLine($"FAIL: {name} printed {r.Lines} lines in round {round}, {first[name].Lines} the first time");
                    return 1;
                }
                runs[name].Add(r);
            }
        }

        Console.WriteLine($"{"command",-18} {"wall median",12} {"min",8} {"max",8} {"cpu median",12} {"allocated",12}");
        foreach (var (name, _) in commands)
        {
            var r = runs[name];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name,-18} {Median(r, x => x.WallMs),9:F1} ms {r.Min(x => x.WallMs),5:F1} ms {r.Max(x => x.WallMs),5:F1} ms {Median(r, x => x.CpuMs),9:F1} ms {Median(r, x => x.AllocatedBytes) / 1048576.0,8:F1} MiB"));
        }
        var wall = Median(runs["bt --all"], x => x.WallMs) / Median(runs["ps"], x => x.WallMs);
        var cpu = Median(runs["bt --all"], x => x.CpuMs) / Median(runs["ps"], x => x.CpuMs);
        var json = Median(runs["bt --all --json"], x => x.WallMs) / Median(runs["ps --json"], x => x.WallMs);
        var verdict = wall <= Budget ? "within" : "OVER";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"bt --all / ps: wall {wall:F2}x, cpu {cpu:F2}x (budget {Budget:F0}x: {verdict}); with --json: wall {json:F2}x"));
        return wall <= Budget ? 0 : 1;
    }

    /// <summary>One command's run: wall and CPU time, bytes allocated, lines printed and trace headers among them.</summary>
    private readonly record struct Timing(double WallMs, double CpuMs, long AllocatedBytes, int Lines, int Headers);

    private static Timing Once(string[] args)
    {
        var stdout = new CountingWriter();
        var stderr = new StringWriter(CultureInfo.InvariantCulture);
        var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var allocated = GC.GetTotalAllocatedBytes(precise: false);
        var sw = Stopwatch.StartNew();
        var code = KvmTyped.Cli.CommandLine.Run(args, stdout, stderr);
        sw.Stop();
        process.Refresh();
        var run = new Timing(sw.Elapsed.TotalMilliseconds, (process.TotalProcessorTime - cpu).TotalMilliseconds,
            GC.GetTotalAllocatedBytes(precise: false) - allocated, stdout.Lines, stdout.Headers);
        if (code != 0)
            throw new InvalidOperationException($"kvmtyped {string.Join(' ', args)} exited {code}: {stderr}");
        return run;
    }

    private static double Median<T>(List<T> items, Func<T, double> value)
    {
        var sorted = items.Select(value).Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>A writer that keeps no text: it counts lines, and those that open a trace ("PID: ").</summary>
    private sealed class CountingWriter : TextWriter
    {
        private int _column;
        private bool _header;

        public int Lines { get; private set; }

        public int Headers { get; private set; }

        public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

        public override void Write(char value)
        {
            if (value == '\n')
            {
                Lines++;
                if (_header)
                    Headers++;
                _column = 0;
                _header = false;
                return;
            }
            _header = _column == 0 ? value == 'P' : _column < 5 ? _header && "PID: "[_column] == value : _header;
            _column++;
        }

        public override void Write(string? value)
        {
            foreach (var c in value ?? "")
                Write(c);
        }

        public override void Write(ReadOnlySpan<char> buffer)
        {
            foreach (var c in buffer)
                Write(c);
        }
    }
}
