using System.Text;
using KvmTyped.Linux.Kernel;
using KvmTyped.Types;

namespace KvmTyped.Linux;

/// <summary>The kernel's utsname (init_uts_ns.name, a struct new_utsname): what uname -a prints.</summary>
/// <param name="Sysname">"Linux".</param>
/// <param name="Nodename">The host name.</param>
/// <param name="Release">uname -r.</param>
/// <param name="Version">uname -v ("#1 SMP PREEMPT_DYNAMIC Debian …").</param>
/// <param name="Machine">uname -m.</param>
/// <param name="Domainname">The NIS domain name ("(none)" when unset).</param>
public sealed record Utsname(string Sysname, string Nodename, string Release, string Version, string Machine, string Domainname)
{
    /// <summary>The length of each new_utsname field (__NEW_UTS_LEN + 1).</summary>
    public const int FieldLength = 65;

    /// <summary>Reads init_uts_ns.name. Where name lies in struct uts_namespace comes from VMCOREINFO's
    /// OFFSET(uts_namespace.name) when the dump has it, else from the kernel's BTF.</summary>
    /// <exception cref="KvmException">Neither gives the offset, or the memory cannot be read.</exception>
    public static Utsname Read(Kvm kvm)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        var address = kvm.TryGetSymbol("init_uts_ns", out var a) ? a
            : kvm.VmcoreInfoData?.Symbol("init_uts_ns") ?? throw new KvmException($"{kvm.NamelistPath}: no symbol \"init_uts_ns\"");
        return Read(uts_namespace.At(kvm, address).name);
    }

    /// <summary>Reads a struct new_utsname at <paramref name="address"/>.</summary>
    public static Utsname Read(Kvm kvm, ulong address)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        return Read(new_utsname.At(kvm, address));
    }

    private static Utsname Read(new_utsname name) =>
        new(name.sysname, name.nodename, name.release, name.version, name.machine, name.domainname);

    /// <summary>Decodes the six 65-byte fields of a struct new_utsname.</summary>
    /// <exception cref="ArgumentException">Fewer than 390 bytes.</exception>
    public static Utsname Parse(ReadOnlySpan<byte> raw)
    {
        if (raw.Length < FieldLength * 6)
            throw new ArgumentException($"a new_utsname is {FieldLength * 6} bytes, got {raw.Length}", nameof(raw));
        var f = new string[6];
        for (var i = 0; i < 6; i++)
        {
            var field = raw.Slice(i * FieldLength, FieldLength);
            var nul = field.IndexOf((byte)0);
            f[i] = Encoding.UTF8.GetString(nul >= 0 ? field[..nul] : field);
        }
        return new Utsname(f[0], f[1], f[2], f[3], f[4], f[5]);
    }

    /// <summary>The line uname -a prints, without the processor, hardware platform and operating system fields
    /// (they are not kernel state): "Linux host release version machine".</summary>
    public override string ToString() => $"{Sysname} {Nodename} {Release} {Version} {Machine}";
}
