using System.Globalization;
using System.Text;
using KvmTyped.Compat;
using static KvmTyped.Compat.Libkvm;

namespace KvmTyped.LiveFacade;

/// <summary>Checks the libkvm facade on the running kernel against the kernel's own /proc, as a C program using
/// libkvm would use it: kvm_open(NULL, NULL, NULL, O_RDONLY), kvm_nlist, kvm_kread, kvm_nextproc, kvm_close, and the
/// O_RDWR refusal. Prints "PASS name (...)" or "FAIL name: reason" per check, then "facade: N/M checks pass"; exits 0
/// only when every check passes.</summary>
internal static class Program
{
    private const string ErrStr = "kvmlive-facade";
    private static readonly string[] Symbols = ["init_task", "linux_banner", "_stext", "jiffies", "init_uts_ns"];
    private const string NoSuchSymbol = "kvmlive_no_such_symbol";
    private const int MaxProcs = 1 << 20;

    private static int Main()
    {
        var checks = new List<(string Name, Func<string> Run)>();
        var errors = new StringWriter();
        ErrorWriter = errors;
        var kd = kvm_open(null, null, null, O_RDONLY, ErrStr);
        checks.Add(("open", () => kd is not null ? "kvm_open(NULL, NULL, NULL, O_RDONLY) opened the running kernel" : throw new CheckFailed($"kvm_open returned NULL: {errors.ToString().Trim()}")));
        checks.Add(("nlist", () => CheckNlist(kd)));
        checks.Add(("kread", () => CheckKread(kd)));
        checks.Add(("nextproc", () => CheckNextproc(kd)));
        checks.Add(("rdwr", CheckRdwrRefused));
        checks.Add(("close", () => kvm_close(kd) == 0 && kvm_close(kd) == -1 ? "kvm_close gives 0, then -1" : throw new CheckFailed("kvm_close did not give 0 then -1")));
        var passed = 0;
        foreach (var (name, run) in checks)
        {
            try
            {
                var note = run();
                passed++;
                Console.WriteLine($"PASS {name} ({note})");
            }
            catch (Exception e) when (e is CheckFailed or IOException or KvmException)
            {
                Console.WriteLine($"FAIL {name}: {e.Message}");
            }
        }
        Console.WriteLine($"facade: {passed.ToString(CultureInfo.InvariantCulture)}/{checks.Count.ToString(CultureInfo.InvariantCulture)} checks pass");
        return passed == checks.Count ? 0 : 1;
    }

    private static KvmHandle Need(KvmHandle? kd) => kd ?? throw new CheckFailed("no handle (kvm_open failed)");

    /// <summary>kvm_nlist fills each symbol with an address /proc/kallsyms gives for that name and its type letter, and
    /// counts the one missing name.</summary>
    private static string CheckNlist(KvmHandle? kd)
    {
        var handle = Need(kd);
        var kallsyms = new Dictionary<string, List<(ulong Address, char Type)>>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines("/proc/kallsyms"))
        {
            var f = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 3 && Symbols.Contains(f[2]))
            {
                if (!kallsyms.TryGetValue(f[2], out var list))
                    kallsyms[f[2]] = list = [];
                list.Add((ulong.Parse(f[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture), f[1][0]));
            }
        }
        var nl = Symbols.Select(s => new nlist(s)).Append(new nlist(NoSuchSymbol)).Append(new nlist(null)).ToArray();
        var missing = kvm_nlist(handle, nl);
        if (missing != 1)
            throw new CheckFailed($"kvm_nlist returned {missing}, not 1 (only {NoSuchSymbol} is missing)");
        var notes = new List<string>();
        for (var i = 0; i < Symbols.Length; i++)
        {
            if (!kallsyms.TryGetValue(Symbols[i], out var want) || want.All(w => w.Address == 0))
                throw new CheckFailed($"{Symbols[i]}: not in /proc/kallsyms with an address (kptr_restrict?)");
            if (!want.Any(w => w.Address == nl[i].n_value && w.Type == (char)nl[i].n_type))
                throw new CheckFailed($"{Symbols[i]}: kvm_nlist gives {nl[i].n_value:x} {(char)nl[i].n_type}, /proc/kallsyms {string.Join(", ", want.Select(w => $"{w.Address:x} {w.Type}"))}");
            notes.Add($"{Symbols[i]}={nl[i].n_value:x}");
        }
        if (nl[Symbols.Length].n_value != 0)
            throw new CheckFailed($"{NoSuchSymbol}: n_value {nl[Symbols.Length].n_value:x}, not 0");
        return string.Join(", ", notes) + $"; {NoSuchSymbol} not found";
    }

    /// <summary>kvm_kread of linux_banner reads the text /proc/version shows.</summary>
    private static string CheckKread(KvmHandle? kd)
    {
        var handle = Need(kd);
        var nl = new[] { new nlist("linux_banner"), new nlist(null) };
        if (kvm_nlist(handle, nl) != 0)
            throw new CheckFailed("kvm_nlist found no linux_banner");
        var buf = new byte[1024];
        var n = kvm_kread(handle, nl[0].n_value, buf);
        if (n != buf.Length)
            throw new CheckFailed($"kvm_kread returned {n}, not {buf.Length}");
        var nul = Array.IndexOf(buf, (byte)0);
        var banner = Encoding.UTF8.GetString(buf, 0, nul < 0 ? buf.Length : nul).TrimEnd('\n');
        var version = File.ReadAllText("/proc/version").TrimEnd('\n');
        if (banner != version)
            throw new CheckFailed($"linux_banner reads \"{banner}\", /proc/version is \"{version}\"");
        return $"linux_banner at {nl[0].n_value:x} = /proc/version ({banner.Length} characters)";
    }

    private static HashSet<int> ProcPids() =>
        [.. Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(n => n!.All(char.IsAsciiDigit)).Select(n => int.Parse(n!, CultureInfo.InvariantCulture))];

    /// <summary>kvm_nextproc walks the live task list: every process /proc shows before and after the walk is in it.</summary>
    private static string CheckNextproc(KvmHandle? kd)
    {
        var handle = Need(kd);
        var before = ProcPids();
        if (kvm_setproc(handle) != 0)
            throw new CheckFailed("kvm_setproc failed");
        var seen = new Dictionary<int, string>();
        for (var p = kvm_nextproc(handle); p is not null; p = kvm_nextproc(handle))
        {
            seen.TryAdd(p.p_pid, p.p_comm);
            if (seen.Count > MaxProcs)
                throw new CheckFailed($"kvm_nextproc gave more than {MaxProcs} processes");
        }
        var stable = ProcPids();
        stable.IntersectWith(before);
        if (stable.Count == 0)
            throw new CheckFailed("/proc shows no process (harness problem)");
        var missing = stable.Where(p => !seen.ContainsKey(p)).Order().ToList();
        if (missing.Count > 0)
            throw new CheckFailed($"{missing.Count} of {stable.Count} stable /proc pids not listed by kvm_nextproc: {string.Join(' ', missing.Take(8))}");
        var wrong = new List<string>();
        foreach (var pid in stable)
        {
            string comm;
            try
            {
                comm = File.ReadAllText($"/proc/{pid}/comm").TrimEnd('\n');
            }
            catch (IOException)
            {
                continue;
            }
            if (!comm.StartsWith("kworker/", StringComparison.Ordinal) && seen[pid] != (comm.Length > 15 ? comm[..15] : comm))
                wrong.Add($"{pid}: {seen[pid]} (/proc: {comm})");
        }
        if (wrong.Count > 0)
            throw new CheckFailed($"comm differs for {string.Join("; ", wrong.Take(4))}");
        return $"{stable.Count} stable /proc pids among {seen.Count} processes, comm as /proc shows";
    }

    /// <summary>O_RDWR on the live kernel is refused with a message saying so.</summary>
    private static string CheckRdwrRefused()
    {
        var errors = new StringWriter();
        ErrorWriter = errors;
        var kd = kvm_open(null, null, null, O_RDWR, ErrStr);
        var message = errors.ToString().Trim();
        if (kd is not null)
        {
            kvm_close(kd);
            throw new CheckFailed("kvm_open(NULL, NULL, NULL, O_RDWR) opened the live kernel");
        }
        if (!message.StartsWith(ErrStr + ": /proc/kcore: ", StringComparison.Ordinal) || !message.Contains("O_RDWR is refused", StringComparison.Ordinal))
            throw new CheckFailed($"kvm_open(O_RDWR) failed with \"{message}\", not the refusal");
        return message;
    }

    private sealed class CheckFailed(string message) : Exception(message);
}
