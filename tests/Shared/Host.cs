using System.Reflection;
using Xunit.Sdk;

namespace KvmTyped.TestSupport;

/// <summary>What the tests may read of the machine they run on, and the data checked in beside them. Tests
/// that read the host say so through the attributes below, which skip them, naming the missing file, on a
/// machine that lacks it; everything else is host-independent.</summary>
internal static class Host
{
    /// <summary>The running kernel's BTF (CONFIG_DEBUG_INFO_BTF).</summary>
    public const string BtfPath = "/sys/kernel/btf/vmlinux";

    /// <summary>The running kernel's symbols.</summary>
    public const string KallsymsPath = "/proc/kallsyms";

    /// <summary>Why a test of the running kernel's BTF cannot run here, or null when it can.</summary>
    public static string? BtfSkipReason => BtfSkipReasonFor(BtfPath);

    /// <summary>Why a test of the kernel BTF at <paramref name="path"/> cannot run, or null when it can.</summary>
    public static string? BtfSkipReasonFor(string path) =>
        File.Exists(path) ? null : $"{path} is missing: the running kernel was built without CONFIG_DEBUG_INFO_BTF";

    /// <summary>Why a test of the running kernel's symbols cannot run here, or null when it can: the file must be
    /// there and show real addresses (kptr_restrict hides them as zeros from a process without CAP_SYSLOG).</summary>
    public static string? KallsymsSkipReason
    {
        get
        {
            if (!File.Exists(KallsymsPath))
                return $"{KallsymsPath} is missing";
            try
            {
                foreach (var line in File.ReadLines(KallsymsPath).Take(64))
                    if (line.Length > 0 && line.TakeWhile(c => c != ' ').Any(c => c != '0'))
                        return null;
                return $"{KallsymsPath} shows no addresses here (kptr_restrict, or a process without CAP_SYSLOG)";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return $"{KallsymsPath} cannot be read: {e.Message}";
            }
        }
    }

    /// <summary>A BTF blob built for the tests from tests/Shared/Btf/tagged.c (see make-tagged-btf.sh there):
    /// TYPE_TAG, DECL_TAG and ENUM64 records and const function-pointer members, on every machine.</summary>
    public static string TaggedBtf => Path.Combine(Fixtures.RepoRoot, "tests", "Shared", "Btf", "tagged.btf");
}

/// <summary>A fact about the running kernel's BTF, skipped (naming the file) where the host has none.</summary>
public sealed class HostBtfFactAttribute : FactAttribute
{
    /// <summary>Creates the attribute.</summary>
    public HostBtfFactAttribute()
    {
        if (Host.BtfSkipReason is { } why)
            Skip = why;
    }
}

/// <summary>A fact about the running kernel's symbols, skipped (naming the reason) where they cannot be read.</summary>
public sealed class HostKallsymsFactAttribute : FactAttribute
{
    /// <summary>Creates the attribute.</summary>
    public HostKallsymsFactAttribute()
    {
        if (Host.KallsymsSkipReason is { } why)
            Skip = why;
    }
}

/// <summary>Theory data for the running kernel's BTF: the given row, skipped (naming the file) where the host has no
/// BTF. The other rows of the theory, from fixtures, run everywhere.</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
public sealed class HostBtfDataAttribute : DataAttribute
{
    private readonly object[] _row;

    /// <summary>Creates the attribute with the row's arguments.</summary>
    public HostBtfDataAttribute(params object[] row)
    {
        _row = row;
        if (Host.BtfSkipReason is { } why)
            Skip = why;
    }

    /// <inheritdoc />
    public override IEnumerable<object[]> GetData(MethodInfo testMethod) => [_row];
}
