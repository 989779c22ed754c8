using System.Runtime.InteropServices;

namespace Naani.Distributed;

// The few MPI calls data-parallel training uses, bound to Open MPI's libmpi.so.40 (Open MPI 3.x to 5.x). Open MPI's
// handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are the addresses of global objects in the library, found by
// name; MPICH-family libraries use integer handles and a different soname, and are not supported by this layer.
internal static unsafe partial class Native
{
    const string Library = "naani-libmpi";   // resolved to the handle Load opened (RTLD_GLOBAL, see there)

    public const int ThreadSerialized = 2;      // MPI_THREAD_SERIALIZED
    public static readonly nint InPlace = 1;    // MPI_IN_PLACE is (void*)1 in Open MPI
    public const nint StatusIgnore = 0;         // MPI_STATUS_IGNORE is NULL

    static nint handle;
    public static nint CommWorld, Float, Double, Byte, Int64, Sum;

    /// Opens libmpi with RTLD_GLOBAL (its plugins, loaded with dlopen, resolve their symbols against it: loaded
    /// locally, as .NET would, they fail) and finds Open MPI's handle objects.
    public static void Load()
    {
        if (handle != 0) return;
        string[] names = ["libmpi.so.40", "libmpi.so"];
        string? error = null;
        foreach (var name in names)
        {
            handle = dlopen(name, RtldNow | RtldGlobal);
            if (handle != 0) break;
            error = Marshal.PtrToStringUTF8(dlerror());
        }
        if (handle == 0)
            throw new DllNotFoundException($"Could not load Open MPI's libmpi.so.40 ({error}). Install Open MPI (Debian: sudo apt-get install openmpi-bin) and launch with mpirun.");
        NativeLibrary.SetDllImportResolver(typeof(Native).Assembly, (name, _, _) => name == Library ? handle : 0);
        CommWorld = Symbol("ompi_mpi_comm_world");
        Float = Symbol("ompi_mpi_float");
        Double = Symbol("ompi_mpi_double");
        Byte = Symbol("ompi_mpi_byte");
        Int64 = Symbol("ompi_mpi_int64_t");
        Sum = Symbol("ompi_mpi_op_sum");
    }

    static nint Symbol(string name) =>
        NativeLibrary.TryGetExport(handle, name, out var address) ? address
            : throw new EntryPointNotFoundException($"libmpi has no '{name}': it is not Open MPI (MPICH and Intel MPI use another ABI, which Naani.Distributed does not bind).");

    /// Throws with MPI's own message when a call did not return MPI_SUCCESS.
    public static void Check(int code, string call)
    {
        if (code == 0) return;
        var text = stackalloc byte[512];
        string message = MPI_Error_string(code, text, out int length) == 0 ? Marshal.PtrToStringUTF8((nint)text, Math.Clamp(length, 0, 511)) : $"error {code}";
        throw new InvalidOperationException($"{call} failed: {message}");
    }

    const int RtldNow = 2, RtldGlobal = 0x100;

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint dlopen(string file, int mode);

    [LibraryImport("libc")]
    private static partial nint dlerror();

    [LibraryImport(Library)] public static partial int MPI_Initialized(out int flag);
    [LibraryImport(Library)] public static partial int MPI_Finalized(out int flag);
    [LibraryImport(Library)] public static partial int MPI_Init_thread(nint argc, nint argv, int required, out int provided);
    [LibraryImport(Library)] public static partial int MPI_Finalize();
    [LibraryImport(Library)] public static partial int MPI_Comm_rank(nint comm, out int rank);
    [LibraryImport(Library)] public static partial int MPI_Comm_size(nint comm, out int size);
    [LibraryImport(Library)] public static partial int MPI_Allreduce(nint sendBuffer, nint receiveBuffer, int count, nint datatype, nint op, nint comm);
    [LibraryImport(Library)] public static partial int MPI_Iallreduce(nint sendBuffer, nint receiveBuffer, int count, nint datatype, nint op, nint comm, out nint request);
    [LibraryImport(Library)] public static partial int MPI_Test(ref nint request, out int flag, nint status);
    [LibraryImport(Library)] public static partial int MPI_Wait(ref nint request, nint status);
    [LibraryImport(Library)] public static partial int MPI_Bcast(nint buffer, int count, nint datatype, int root, nint comm);
    [LibraryImport(Library)] public static partial int MPI_Allgather(nint sendBuffer, int sendCount, nint sendType, nint receiveBuffer, int receiveCount, nint receiveType, nint comm);
    [LibraryImport(Library)] public static partial int MPI_Barrier(nint comm);
    [LibraryImport(Library)] public static partial int MPI_Abort(nint comm, int code);
    [LibraryImport(Library)] private static partial int MPI_Error_string(int code, byte* text, out int length);
}
