namespace KvmTyped.Tests.TestSupport;

/// <summary>VMCOREINFO describing a printk ring at fixed addresses, for logs built in code.</summary>
internal static class PrintkRingInfo
{
    /// <summary>The ring's SYMBOL(prb) (0x10000) with the OFFSET and SIZE entries Debian's 6.1 amd64 kernel writes.</summary>
    public const string Debian61Amd64 = """
        SYMBOL(prb)=10000
        SIZE(printk_ringbuffer)=88
        OFFSET(printk_ringbuffer.desc_ring)=0
        OFFSET(printk_ringbuffer.text_data_ring)=48
        OFFSET(printk_ringbuffer.fail)=80
        SIZE(prb_desc_ring)=48
        OFFSET(prb_desc_ring.count_bits)=0
        OFFSET(prb_desc_ring.descs)=8
        OFFSET(prb_desc_ring.infos)=16
        OFFSET(prb_desc_ring.head_id)=24
        OFFSET(prb_desc_ring.tail_id)=32
        SIZE(prb_desc)=24
        OFFSET(prb_desc.state_var)=0
        OFFSET(prb_desc.text_blk_lpos)=8
        SIZE(prb_data_blk_lpos)=16
        OFFSET(prb_data_blk_lpos.begin)=0
        OFFSET(prb_data_blk_lpos.next)=8
        SIZE(printk_info)=88
        OFFSET(printk_info.seq)=0
        OFFSET(printk_info.ts_nsec)=8
        OFFSET(printk_info.text_len)=16
        OFFSET(printk_info.caller_id)=20
        OFFSET(printk_info.dev_info)=24
        SIZE(prb_data_ring)=32
        OFFSET(prb_data_ring.size_bits)=0
        OFFSET(prb_data_ring.data)=8
        OFFSET(prb_data_ring.head_lpos)=16
        OFFSET(prb_data_ring.tail_lpos)=24
        SIZE(atomic_long_t)=8
        OFFSET(atomic_long_t.counter)=0

        """;
}
