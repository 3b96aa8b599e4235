namespace KvmTyped;

/// <summary>Flags of <see cref="Kvm.Open"/>, with the values of the C constants of the same meaning.</summary>
[Flags]
public enum KvmOpenFlags
{
    /// <summary>O_RDONLY: open the corefile for reading only.</summary>
    ReadOnly = 0,

    /// <summary>O_RDWR: open the corefile for reading and writing (kvm_kwrite).</summary>
    ReadWrite = 2,

    /// <summary>KVM_NSRCH: do not require the section files a core names; load those present, record the rest as missing.</summary>
    NoSearch = 0x100,
}
