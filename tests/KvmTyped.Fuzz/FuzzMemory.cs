using System.Diagnostics.CodeAnalysis;
using KvmTyped.Formats;
using KvmTyped.Types;

namespace KvmTyped.Fuzz;

/// <summary>Counts the work a target does: every read of the memory the fuzz input stands for is one step.</summary>
public static class FuzzWork
{
    [ThreadStatic]
    private static long t_reads;

    /// <summary>Reads done on this thread since the last <see cref="Reset"/>.</summary>
    public static long Reads => t_reads;

    /// <summary>Starts counting again.</summary>
    public static void Reset() => t_reads = 0;

    internal static void Count() => t_reads++;
}

/// <summary>Physical memory that is the fuzz input, from <see cref="Base"/> on: for the page-table walks.</summary>
internal sealed class FuzzPhysicalMemory(ReadOnlyMemory<byte> bytes, ulong @base = 0) : IPhysicalMemory
{
    public ulong Base { get; } = @base;

    public string FormatName => "fuzz input";

    public IReadOnlyList<PhysicalRange> Ranges { get; } = [new PhysicalRange(@base, (ulong)bytes.Length, "fuzz input")];

    public bool IsWritable => false;

    public bool TryRead(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        FuzzWork.Count();
        if (address < Base || address - Base > (ulong)bytes.Length || (ulong)destination.Length > (ulong)bytes.Length - (address - Base))
        {
            failure = $"physical address 0x{address:x} is not in the input";
            return false;
        }
        bytes.Span.Slice((int)(address - Base), destination.Length).CopyTo(destination);
        failure = null;
        return true;
    }

    public void Write(ulong address, ReadOnlySpan<byte> source) => throw new KvmWriteException(address, "the fuzz input is read-only");

    public void Dispose()
    {
    }
}

/// <summary>Kernel virtual memory that is the fuzz input, from <see cref="Base"/> on: for the walkers of kernel structs.</summary>
internal sealed class FuzzKernelMemory(DataModel model, ReadOnlyMemory<byte> bytes, ulong @base) : IKernelMemory
{
    public ulong Base { get; } = @base;

    public DataModel DataModel { get; } = model;

    public bool TryReadVirtual(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        FuzzWork.Count();
        if (address < Base || address - Base > (ulong)bytes.Length || (ulong)destination.Length > (ulong)bytes.Length - (address - Base))
        {
            failure = $"cannot translate 0x{address:x}: not mapped";
            return false;
        }
        bytes.Span.Slice((int)(address - Base), destination.Length).CopyTo(destination);
        failure = null;
        return true;
    }
}
