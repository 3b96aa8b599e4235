using KvmTyped.Formats;

namespace KvmTyped.Compat;

/// <summary>A handle returned by <see cref="Libkvm.kvm_open"/> (C's kvm_t *).</summary>
public sealed class KvmHandle
{
    internal KvmHandle(Kvm kvm, string? errstr)
    {
        Kvm = kvm;
        ErrStr = errstr;
    }

    /// <summary>The image behind the handle, for code that moves to the idiomatic API.</summary>
    public Kvm Kvm { get; }

    internal string? ErrStr { get; }

    /// <summary>The process state kept per handle (kvm_nextproc's list and cursor, kvm_getu's current process).</summary>
    internal ProcState Procs { get; } = new();

    internal void Report(string message)
    {
        if (ErrStr is not null)
            Libkvm.ErrorWriter.WriteLine($"{ErrStr}: {message}");
    }
}

#pragma warning disable CS8981 // the C name is the point of this facade
/// <summary>An entry of the array given to <see cref="Libkvm.kvm_nlist"/> (nlist(3)); a null name ends the array.</summary>
public struct nlist
{
    /// <summary>Creates an entry asking for a symbol.</summary>
    public nlist(string? name) => n_name = name;

    /// <summary>The symbol's name; null ends the list.</summary>
    public string? n_name;

    /// <summary>Its running address, filled in by kvm_nlist (0 when not found).</summary>
    public ulong n_value;

    /// <summary>Its nm-style type letter as a byte, filled in by kvm_nlist (0 when not found).</summary>
    public byte n_type;
}
#pragma warning restore CS8981

/// <summary>The libkvm functions under their C names and with their C behaviour (null / -1 on failure;
/// errors printed to stderr behind errstr when one was given), so C tools port line by line.</summary>
/// <remarks>kvm_open(3KVM): the "libkvm data model" is this process's (pointer size), as in C, unless
/// <see cref="DataModel"/> is set; a core of the other model is refused.</remarks>
public static partial class Libkvm
{
    /// <summary>O_RDONLY.</summary>
    public const int O_RDONLY = 0;

    /// <summary>O_RDWR.</summary>
    public const int O_RDWR = 2;

    /// <summary>KVM_NSRCH: don't require the section files a core names.</summary>
    public const int KVM_NSRCH = 0x100;

    /// <summary>The data model libkvm examines; null means this process's, as a C libkvm is built.</summary>
    public static DataModel? DataModel { get; set; }

    /// <summary>Where errors are printed behind errstr (standard error unless replaced, e.g. in tests).</summary>
    public static TextWriter ErrorWriter { get; set; } = Console.Error;

    /// <summary>Options passed to every open (paths of the live kernel's files, for example).</summary>
    public static KvmOpenOptions? Options { get; set; }

    private static KvmOpenOptions EffectiveOptions()
    {
        var o = Options ?? new KvmOpenOptions();
        var model = DataModel ?? (IntPtr.Size == 8 ? KvmTyped.DataModel.LP64 : KvmTyped.DataModel.ILP32);
        return o with { SupportedModels = [model], ErrorWriter = ErrorWriter };
    }

    /// <summary>kvm_open: opens a kernel image; null on failure (the reason printed behind errstr when given).</summary>
    public static KvmHandle? kvm_open(string? namelist, string? corefile, string? swapfile, int flag, string? errstr)
    {
        try
        {
            return new KvmHandle(Kvm.Open(namelist, corefile, swapfile, (KvmOpenFlags)flag, errstr, EffectiveOptions()), errstr);
        }
        catch (Exception e) when (e is KvmException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            if (e is not KvmException && errstr is not null)
                ErrorWriter.WriteLine($"{errstr}: {e.Message}");
            return null;
        }
    }

    /// <summary>kvm_close: 0, or -1 for null or an already closed handle.</summary>
    public static int kvm_close(KvmHandle? kd)
    {
        if (kd is null || !kd.Kvm.Close())
            return -1;
        kd.Procs.Reset();
        return 0;
    }

    /// <summary>kvm_nlist: fills n_value and n_type for each entry up to the first null name.</summary>
    /// <returns>The number of symbols not found, or -1 on error (null or closed handle, null array).</returns>
    public static int kvm_nlist(KvmHandle? kd, nlist[]? nl)
    {
        if (kd is null || nl is null || kd.Kvm.IsClosed)
            return -1;
        try
        {
            return NList(kd, nl);
        }
        catch (KvmException e)
        {
            kd.Report($"kvm_nlist: {e.Message}");
            return -1;
        }
    }

    private static int NList(KvmHandle kd, nlist[] nl)
    {
        var missing = 0;
        for (var i = 0; i < nl.Length && nl[i].n_name is { } name; i++)
        {
            if (kd.Kvm.TryLookupSymbol(name, out var s))
            {
                nl[i].n_value = s.Address;
                nl[i].n_type = (byte)s.Type;
            }
            else
            {
                nl[i].n_value = 0;
                nl[i].n_type = 0;
                missing++;
            }
        }
        return missing;
    }

    /// <summary>kvm_kread: reads kernel virtual memory; the bytes read, or -1.</summary>
    /// <remarks>Reads page by page and stops at the first unreadable byte: a partial count is returned
    /// when some bytes were read, -1 when none could be.</remarks>
    public static long kvm_kread(KvmHandle? kd, ulong addr, Span<byte> buf)
    {
        if (kd is null || kd.Kvm.IsClosed)
            return -1;
        try
        {
            return KRead(kd, addr, buf);
        }
        catch (KvmClosedException)
        {
            return -1;
        }
    }

    private static long KRead(KvmHandle kd, ulong addr, Span<byte> buf)
    {
        long done = 0;
        string? failure = null;
        while (done < buf.Length)
        {
            var a = addr + (ulong)done;
            if (done > 0 && a == 0)
                break; // the top of the address space
            var n = (int)Math.Min(buf.Length - done, 4096 - (long)(a & 4095));
            if (!kd.Kvm.TryReadVirtual(a, buf.Slice((int)done, n), out failure))
                break;
            done += n;
        }
        if (done == 0 && buf.Length > 0)
        {
            kd.Report($"kvm_kread: {failure}");
            return -1;
        }
        return done;
    }

    /// <summary>kvm_kwrite: writes kernel virtual memory into the corefile (O_RDWR); the bytes written, or -1.</summary>
    public static long kvm_kwrite(KvmHandle? kd, ulong addr, ReadOnlySpan<byte> buf)
    {
        if (kd is null || kd.Kvm.IsClosed)
            return -1;
        try
        {
            kd.Kvm.WriteVirtual(addr, buf);
            return buf.Length;
        }
        catch (KvmClosedException)
        {
            return -1;
        }
        catch (KvmException e)
        {
            kd.Report($"kvm_kwrite: {e.Message}");
            return -1;
        }
    }

    /// <summary>kvm_pread: reads physical memory; the bytes read, or -1.</summary>
    public static long kvm_pread(KvmHandle? kd, ulong paddr, Span<byte> buf)
    {
        if (kd is null || kd.Kvm.IsClosed)
            return -1;
        string? failure;
        try
        {
            if (kd.Kvm.TryReadPhysical(paddr, buf, out failure))
                return buf.Length;
        }
        catch (KvmClosedException)
        {
            return -1;
        }
        kd.Report($"kvm_pread: {failure}");
        return -1;
    }
}
