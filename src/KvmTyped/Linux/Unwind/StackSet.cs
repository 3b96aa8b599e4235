using System.Globalization;
using KvmTyped.Types;

namespace KvmTyped.Linux.Unwind;

/// <summary>Which stack a range is (arch/x86/include/asm/stacktrace.h, enum stack_type).</summary>
internal enum StackKind
{
    /// <summary>A task's kernel stack (THREAD_SIZE bytes at task->stack).</summary>
    Task,

    /// <summary>A CPU's hard-IRQ stack.</summary>
    HardIrq,

    /// <summary>A CPU's soft-IRQ stack (i386).</summary>
    SoftIrq,

    /// <summary>One of a CPU's exception stacks (x86-64: DF, NMI, DB, MCE, VC, VC2).</summary>
    Exception,

    /// <summary>arm64: a CPU's overflow stack (per-CPU <c>overflow_stack</c>), used when the task stack overflows.</summary>
    Overflow,

    /// <summary>arm64: a CPU's SDEI stacks (firmware events: normal and critical priority).</summary>
    Sdei,
}

/// <summary>A stack: [Begin, End).</summary>
/// <param name="Kind">Which stack.</param>
/// <param name="Name">How a trace names it ("task", "IRQ", "NMI exception", …).</param>
/// <param name="Begin">Its lowest address.</param>
/// <param name="End">One past its highest.</param>
internal readonly record struct StackRange(StackKind Kind, string Name, ulong Begin, ulong End)
{
    /// <summary>Whether [address, address + length) lies in the stack.</summary>
    public bool Contains(ulong address, ulong length) => address >= Begin && length <= End - Begin && address - Begin <= End - Begin - length;
}

/// <summary>The stacks one trace may walk, and which of them it has been on: the kernel's get_stack_info and its
/// visit mask. A task that is not running owns only its task stack; the task a CPU runs may also be on that CPU's
/// IRQ and exception stacks. Leaving a stack for another is allowed once per stack: coming back to one is the kernel's
/// "stack recursion" and ends the trace, so every trace ends.</summary>
internal sealed class StackSet
{
    /// <summary>The most pages of a CPU's exception stack area scanned (six stacks and seven guard pages; 16 KiB stacks
    /// under KASAN make 31 pages).</summary>
    public const int MaxExceptionAreaPages = 64;

    private static readonly string[] ExceptionStacks = ["DF", "NMI", "DB", "MCE", "VC", "VC2"];

    private readonly List<StackRange> _ranges;
    private readonly IKernelMemory? _memory;
    private readonly ulong _exceptionArea;
    private readonly int _pageBytes;
    private readonly HashSet<(StackKind, ulong)> _visited = [];

    /// <summary>A set of stacks.</summary>
    /// <param name="ranges">The task stack and, for a running task, its CPU's IRQ stacks.</param>
    /// <param name="memory">Memory to probe the exception stacks' pages with (null: no exception stacks).</param>
    /// <param name="exceptionArea">The CPU's exception stack area (x86-64 cea_exception_stacks), or 0.</param>
    /// <param name="pageSize">The kernel's page size.</param>
    public StackSet(IEnumerable<StackRange> ranges, IKernelMemory? memory = null, ulong exceptionArea = 0, int pageSize = 4096)
    {
        _ranges = [.. ranges];
        _memory = memory;
        _exceptionArea = exceptionArea;
        _pageBytes = pageSize;
    }

    /// <summary>The stacks given (the exception stacks are found when an address falls on one).</summary>
    public IReadOnlyList<StackRange> Ranges => _ranges;

    /// <summary>The stack the walk is on, once it has been placed.</summary>
    public StackRange? Current { get; private set; }

    /// <summary>Why the last <see cref="Access"/> failed.</summary>
    public string? Failure { get; private set; }

    /// <summary>The stack holding <paramref name="address"/>, or null.</summary>
    public StackRange? Locate(ulong address)
    {
        foreach (var r in _ranges)
        {
            if (r.Contains(address, 1))
                return r;
        }
        return ExceptionStack(address);
    }

    /// <summary>Whether [address, address + length) may be read: on the current stack, or on another one not visited
    /// before (which becomes current). The kernel's stack_access_ok.</summary>
    public bool Access(ulong address, ulong length)
    {
        if (Current is { } current && current.Contains(address, length))
            return true;
        if (Locate(address) is not { } other)
        {
            Failure = $"0x{address.ToString("x", CultureInfo.InvariantCulture)} is not on {Describe()}";
            return false;
        }
        if (Current == other)
        {
            Failure = $"{length} bytes at 0x{address.ToString("x", CultureInfo.InvariantCulture)} run past the end of the {other.Name} stack";
            return false;
        }
        if (!_visited.Add((other.Kind, other.Begin)))
        {
            Failure = $"stack recursion: back on the {other.Name} stack at 0x{address.ToString("x", CultureInfo.InvariantCulture)}";
            return false;
        }
        Current = other;
        if (!other.Contains(address, length))
        {
            Failure = $"{length} bytes at 0x{address.ToString("x", CultureInfo.InvariantCulture)} run past the end of the {other.Name} stack";
            return false;
        }
        return true;
    }

    /// <summary>What the stacks are, for messages.</summary>
    public string Describe() =>
        _ranges.Count == 0 ? "any known stack"
        : string.Join(", ", _ranges.Select(r => $"the {r.Name} stack (0x{r.Begin.ToString("x", CultureInfo.InvariantCulture)}-0x{r.End.ToString("x", CultureInfo.InvariantCulture)})"))
          + (_exceptionArea != 0 ? " or an exception stack" : "");

    /// <summary>The exception stack holding <paramref name="address"/>: the run of mapped pages around it in the CPU's
    /// exception stack area, whose stacks lie between unmapped guard pages (struct cea_exception_stacks); the n-th run
    /// is the n-th stack.</summary>
    private StackRange? ExceptionStack(ulong address)
    {
        if (_exceptionArea == 0 || _memory is null || address < _exceptionArea)
            return null;
        var page = (ulong)_pageBytes;
        var index = (address - _exceptionArea) / page;
        if (index >= MaxExceptionAreaPages)
            return null;
        var run = -1;
        var inRun = false;
        ulong runStart = 0;
        for (ulong p = 0; p < MaxExceptionAreaPages; p++)
        {
            var mapped = Mapped(_exceptionArea + p * page);
            if (mapped && !inRun)
            {
                run++;
                runStart = p;
            }
            inRun = mapped;
            if (p == index)
            {
                if (!mapped || run >= ExceptionStacks.Length)
                    return null;
                var end = p + 1;
                while (end < MaxExceptionAreaPages && Mapped(_exceptionArea + end * page))
                    end++;
                return new StackRange(StackKind.Exception, ExceptionStacks[run] + " exception", _exceptionArea + runStart * page, _exceptionArea + end * page);
            }
        }
        return null;
    }

    private bool Mapped(ulong address)
    {
        Span<byte> probe = stackalloc byte[1];
        return _memory!.TryReadVirtual(address, probe, out _);
    }
}
