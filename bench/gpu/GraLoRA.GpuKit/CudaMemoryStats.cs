using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;

/// <summary>
/// libtorch's CUDA caching-allocator statistics (what Python's torch.cuda.memory_allocated / max_memory_allocated read),
/// which TorchSharp 0.107 does not expose. The allocator object comes from the exported data symbol
/// <c>c10::cuda::CUDACachingAllocator::allocator</c> (libc10_cuda.so); its <c>c10::DeviceAllocator::getDeviceStats</c>
/// and <c>resetPeakStats</c> (PyTorch 2.8+) are called through its vtable. The slots are derived from the sizes of
/// <c>c10::Allocator</c>'s and <c>c10::DeviceAllocator</c>'s vtables in libc10.so's dynamic symbol table, and
/// <see cref="Open"/> checks the readings on a known allocation: any mismatch returns null with the reason instead of numbers.
/// </summary>
sealed unsafe class CudaMemoryStats
{
    // c10::DeviceAllocator's own virtual functions (PyTorch 2.8+), in declaration order after c10::Allocator's:
    // initialized, emptyCache, recordStream, getDeviceStats, resetAccumulatedStats, resetPeakStats, getMemoryInfo.
    const int OwnSlots = 7, GetDeviceStatsSlot = 3, ResetPeakStatsSlot = 5;
    // DeviceStats: nine StatArrays (3 × Stat{current, peak, allocated, freed}, int64) first; allocated_bytes is the
    // fifth, reserved_bytes the sixth. The buffer is larger than the struct on purpose.
    const int StatArrayBytes = 3 * 4 * 8, AllocatedBytesOffset = 4 * StatArrayBytes, ReservedBytesOffset = 5 * StatArrayBytes, StatsBufferBytes = 4096;

    readonly IntPtr _allocator;
    readonly delegate* unmanaged<IntPtr, IntPtr, sbyte, void> _getDeviceStats;   // Itanium ABI: return buffer, then this
    readonly delegate* unmanaged<IntPtr, sbyte, void> _resetPeakStats;

    /// <summary>The allocator's C++ type (from its vtable's type_info), e.g. c10::cuda::CUDACachingAllocator::Native::NativeCachingAllocator.</summary>
    public string AllocatorType { get; }

    CudaMemoryStats(IntPtr allocator, IntPtr* vtable, int firstOwnSlot, string type)
    {
        _allocator = allocator;
        _getDeviceStats = (delegate* unmanaged<IntPtr, IntPtr, sbyte, void>)vtable[firstOwnSlot + GetDeviceStatsSlot];
        _resetPeakStats = (delegate* unmanaged<IntPtr, sbyte, void>)vtable[firstOwnSlot + ResetPeakStatsSlot];
        AllocatorType = type;
    }

    /// <summary>Bytes held by live tensors and reserved by the allocator on device 0, now and at their peak.</summary>
    public (long Allocated, long AllocatedPeak, long Reserved, long ReservedPeak) Read()
    {
        var buffer = Marshal.AllocHGlobal(StatsBufferBytes);
        try
        {
            new Span<byte>((void*)buffer, StatsBufferBytes).Clear();
            _getDeviceStats(buffer, _allocator, 0);
            long At(int offset) => Marshal.ReadInt64(buffer, offset);
            return (At(AllocatedBytesOffset), At(AllocatedBytesOffset + 8), At(ReservedBytesOffset), At(ReservedBytesOffset + 8));
        }
        finally { Marshal.FreeHGlobal(buffer); }
    }

    /// <summary>Peaks restart from the current values (torch.cuda.reset_peak_memory_stats).</summary>
    public void ResetPeak() => _resetPeakStats(_allocator, 0);

    /// <summary>
    /// Finds the allocator in the libtorch folder and checks it: a 64 MiB float32 tensor must raise allocated bytes by
    /// exactly 64 MiB, and ResetPeak must bring the peak down to the current value. Null (with the reason) otherwise.
    /// </summary>
    public static CudaMemoryStats? Open(string libtorchDirectory, Func<long, IDisposable> allocateFloats, out string reason)
    {
        try
        {
            int firstOwnSlot = FirstDeviceAllocatorSlot(libtorchDirectory, out reason);
            if (firstOwnSlot < 0) return null;
            var c10Cuda = NativeLibrary.Load(Path.Combine(libtorchDirectory, "libc10_cuda.so"));
            var slot = NativeLibrary.GetExport(c10Cuda, "_ZN3c104cuda20CUDACachingAllocator9allocatorE");   // std::atomic<CUDAAllocator*>
            var allocator = Marshal.ReadIntPtr(slot);
            if (allocator == IntPtr.Zero)
            {
                reason = "the CUDA allocator is not set up";
                return null;
            }
            var vtable = *(IntPtr**)allocator;
            // vtable[-1] is the object's type_info: only call into its vtable if it is a c10::DeviceAllocator.
            string type = TypeName(vtable[-1]);
            if (!DerivesFrom(vtable[-1], DeviceAllocatorName))
            {
                reason = $"the CUDA allocator ({type}) is not a c10::DeviceAllocator by single inheritance";
                return null;
            }
            var stats = new CudaMemoryStats(allocator, vtable, firstOwnSlot, type);

            const long floats = 16L << 20, bytes = floats * 4;
            var before = stats.Read();
            var tensor = allocateFloats(floats);
            var during = stats.Read();
            tensor.Dispose();
            stats.ResetPeak();
            var after = stats.Read();
            if (during.Allocated - before.Allocated != bytes || during.AllocatedPeak < during.Allocated || during.Reserved < during.Allocated
                || after.AllocatedPeak != after.Allocated || after.Allocated != before.Allocated)
            {
                reason = $"the readings do not add up (before {before}, with a {bytes >> 20} MiB tensor {during}, after freeing it and resetting the peak {after})";
                return null;
            }
            reason = "";
            return stats;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException or IOException or InvalidDataException)
        {
            reason = ex.Message;
            return null;
        }
    }

    const string AllocatorName = "N3c109AllocatorE", DeviceAllocatorName = "N3c1015DeviceAllocatorE";

    /// <summary>
    /// The vtable slot of c10::DeviceAllocator's first own virtual function, from the sizes of c10::Allocator's and
    /// c10::DeviceAllocator's vtables in libc10.so; −1 (with the reason) when the layout is not the one this reader knows.
    /// </summary>
    public static int FirstDeviceAllocatorSlot(string libtorchDirectory, out string reason)
    {
        var sizes = DynamicSymbolSizes(Path.Combine(libtorchDirectory, "libc10.so"), "_ZTV" + AllocatorName, "_ZTV" + DeviceAllocatorName);
        if (!sizes.TryGetValue("_ZTV" + AllocatorName, out long baseSize) || !sizes.TryGetValue("_ZTV" + DeviceAllocatorName, out long deviceSize))
        {
            reason = "libc10.so exports no c10::DeviceAllocator vtable (PyTorch before 2.8?)";
            return -1;
        }
        if (deviceSize - baseSize != OwnSlots * 8)
        {
            reason = $"c10::DeviceAllocator adds {(deviceSize - baseSize) / 8} virtual functions to c10::Allocator, not the {OwnSlots} this reader knows";
            return -1;
        }
        reason = "";
        return (int)(baseSize / 8) - 2;            // a vtable symbol's size counts offset-to-top and type_info before the slots
    }

    /// <summary>
    /// The reader's type checks on the CPU allocator (c10::GetCPUAllocator()), which every libtorch has: its type, and
    /// whether it counts as a c10::Allocator (it must) and as a c10::DeviceAllocator (it must not).
    /// </summary>
    public static (string Type, bool IsAllocator, bool IsDeviceAllocator) DescribeCpuAllocator(string libtorchDirectory)
    {
        var c10 = NativeLibrary.Load(Path.Combine(libtorchDirectory, "libc10.so"));
        var get = (delegate* unmanaged<IntPtr>)NativeLibrary.GetExport(c10, "_ZN3c1015GetCPUAllocatorEv");
        var typeInfo = (*(IntPtr**)get())[-1];
        return (TypeName(typeInfo), DerivesFrom(typeInfo, AllocatorName), DerivesFrom(typeInfo, DeviceAllocatorName));
    }

    static string TypeName(IntPtr typeInfo) => Marshal.PtrToStringAnsi(Marshal.ReadIntPtr(typeInfo, 8))?.TrimStart('*') ?? "?";

    /// <summary>
    /// Whether the class of <paramref name="typeInfo"/> is <paramref name="mangledName"/> or has it as a base along a chain of
    /// single inheritance (each type_info an __si_class_type_info: vptr, name, base type_info).
    /// </summary>
    static bool DerivesFrom(IntPtr typeInfo, string mangledName)
    {
        var cxxabi = NativeLibrary.Load("libstdc++.so.6");
        var single = NativeLibrary.GetExport(cxxabi, "_ZTVN10__cxxabiv120__si_class_type_infoE") + 16;   // its vtable's address point
        for (int depth = 0; typeInfo != IntPtr.Zero && depth < 16; depth++)
        {
            if (TypeName(typeInfo) == mangledName) return true;
            if (Marshal.ReadIntPtr(typeInfo) != single) return false;
            typeInfo = Marshal.ReadIntPtr(typeInfo, 16);
        }
        return false;
    }

    /// <summary>st_size of the named symbols in an ELF64 little-endian file's .dynsym.</summary>
    static Dictionary<string, long> DynamicSymbolSizes(string path, params string[] names)
    {
        var image = File.ReadAllBytes(path);
        var wanted = new HashSet<string>(names, StringComparer.Ordinal);
        var found = new Dictionary<string, long>(StringComparer.Ordinal);
        if (image.Length < 64 || image[0] != 0x7F || image[1] != (byte)'E' || image[4] != 2 || image[5] != 1)
            throw new InvalidDataException($"{path} is not a little-endian ELF64 file");
        ulong U64(long at) => BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(checked((int)at), 8));
        uint U32(long at) => BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(checked((int)at), 4));
        long sections = (long)U64(0x28);
        int entrySize = BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(0x3A)), count = BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(0x3C));
        for (int i = 0; i < count; i++)
        {
            long header = sections + (long)i * entrySize;
            if (U32(header + 4) != 11) continue;                                        // SHT_DYNSYM
            long symbols = (long)U64(header + 0x18), size = (long)U64(header + 0x20);
            long strings = (long)U64(sections + (long)U32(header + 0x28) * entrySize + 0x18);   // sh_link: its string table
            for (long s = symbols; s + 24 <= symbols + size; s += 24)
            {
                long nameAt = strings + U32(s);
                int end = Array.IndexOf(image, (byte)0, checked((int)nameAt));
                string name = Encoding.ASCII.GetString(image, (int)nameAt, end - (int)nameAt);
                if (wanted.Contains(name)) found[name] = (long)U64(s + 16);
            }
        }
        return found;
    }
}
