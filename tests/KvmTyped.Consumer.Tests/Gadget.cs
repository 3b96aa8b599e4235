#pragma warning disable CS8981 // kernel type names are lower-case C names

using KvmTyped.Consumer.Tests.Kernel;
using KvmTyped.Types;

namespace KvmTyped.Consumer.Tests;

/// <summary>A struct declared in C#: struct gadget { int serial; unsigned long mask; struct widget *owner; char tag[6]; }.</summary>
[KernelStruct]
public partial struct gadget
{
    /// <summary>int serial.</summary>
    public partial int serial { get; }

    /// <summary>unsigned long mask (4 bytes under ILP32, 8 under LP64).</summary>
    [KernelType("unsigned long")]
    public partial ulong mask { get; }

    /// <summary>struct widget *owner.</summary>
    public partial KPtr<widget> owner { get; }

    /// <summary>char tag[6].</summary>
    [KernelArray(6)]
    public partial string tag { get; }
}
