using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace Mistral.Merge.IO.Pickle;

/// <summary>
/// A pickle reader that never executes anything: it implements the opcodes of protocols 2–5 that PyTorch
/// checkpoints use and builds plain data (<see cref="PickleValues"/>). GLOBAL/STACK_GLOBAL resolve only names on
/// <see cref="TorchGlobals"/>'s allow-list (any other name is refused on sight, naming it); REDUCE/NEWOBJ/BUILD
/// apply only those as data constructors; INST, OBJ, the extension registry and out-of-band buffers are refused.
/// Every opcode does bounded work, so reading is linear in the pickle's length; values, stack and memo are
/// capped so that a hostile pickle cannot exhaust memory, and nothing recurses.
/// </summary>
internal sealed unsafe class RestrictedUnpickler
{
    public const int MaxMarkDepth = 1000;
    public const long MaxValues = 4_000_000;
    public const int MaxStringBytes = 16 << 20;
    public const int MaxLongBytes = 64;

    private readonly string _where;
    private readonly byte* _data;
    private readonly long _end;
    private long _pos;
    private readonly Func<object?, Func<string, Exception>, object?> _persistentLoad;
    private readonly List<object?> _stack = [];
    private readonly List<int> _marks = [];
    private readonly Dictionary<long, object?> _memo = [];
    private long _values;

    /// <param name="where">Names the pickle in errors, e.g. <c>model.bin: pickle 'archive/data.pkl'</c>.</param>
    /// <param name="persistentLoad">Turns a persistent id into a value (a storage reference), or throws the given error.</param>
    private RestrictedUnpickler(string where, byte* data, long start, long end, Func<object?, Func<string, Exception>, object?> persistentLoad)
    {
        _where = where; _data = data; _pos = _start = start; _end = end; _persistentLoad = persistentLoad;
    }

    /// <summary>Reads one pickle from [<paramref name="start"/>, <paramref name="end"/>) of <paramref name="data"/>; returns its value and the offset after its STOP.</summary>
    public static (object? Value, long End) Load(string where, byte* data, long start, long end,
        Func<object?, Func<string, Exception>, object?>? persistentLoad = null)
    {
        var u = new RestrictedUnpickler(where, data, start, end,
            persistentLoad ?? ((pid, fail) => throw fail("a persistent id where none is expected")));
        return (u.Run(), u._pos);
    }

    private readonly long _start;
    private long _opAt;

    /// <summary>Where the current opcode is, counted from the pickle's first byte (as pickletools.dis shows it).</summary>
    private long OpAt => _opAt - _start;

    private MergeException Fail(string message) => new($"{_where}: {message} (opcode at byte {OpAt} of the pickle)");

    private object? Run()
    {
        while (true)
        {
            _opAt = _pos;
            byte op = U8();
            switch (op)
            {
                case 0x80: // PROTO
                    if (U8() is var proto && proto > 5) throw Fail($"pickle protocol {proto} is not supported (at most 5)");
                    break;
                case 0x95: // FRAME: a length hint only
                    if (I64() is var frame && (frame < 0 || frame > _end - _pos)) throw Fail($"frame of {frame} bytes runs past the end");
                    break;
                case (byte)'.': // STOP
                    if (_marks.Count != 0) throw Fail("STOP inside an open MARK");
                    if (_stack.Count != 1) throw Fail($"STOP with {_stack.Count} values on the stack (expected 1)");
                    return _stack[0];
                case (byte)'(': // MARK
                    if (_marks.Count >= MaxMarkDepth) throw Fail($"nesting deeper than {MaxMarkDepth} MARKs");
                    _marks.Add(_stack.Count);
                    break;
                case (byte)'0': Pop(); break; // POP
                case (byte)'1': PopMark(); break; // POP_MARK
                case (byte)'2': Push(Peek()); break; // DUP
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Bytes(4))); break; // BININT
                case (byte)'K': Push((long)U8()); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2))); break; // BININT2
                case 0x8a: PushLong(U8()); break; // LONG1
                case 0x8b: PushLong(Length(BinaryPrimitives.ReadInt32LittleEndian(Bytes(4)), MaxLongBytes, "LONG4")); break;
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Bytes(8))); break; // BINFLOAT
                case (byte)'X': PushText(Length(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)), MaxStringBytes, "BINUNICODE")); break;
                case 0x8c: PushText(U8()); break; // SHORT_BINUNICODE
                case 0x8d: PushText(Length(BinaryPrimitives.ReadInt64LittleEndian(Bytes(8)), MaxStringBytes, "BINUNICODE8")); break;
                case (byte)'T': PushLatin1(Length(BinaryPrimitives.ReadInt32LittleEndian(Bytes(4)), MaxStringBytes, "BINSTRING")); break;
                case (byte)'U': PushLatin1(U8()); break; // SHORT_BINSTRING
                case (byte)'B': PushBytes(Length(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)), MaxStringBytes, "BINBYTES")); break;
                case (byte)'C': PushBytes(U8()); break; // SHORT_BINBYTES
                case 0x8e: PushBytes(Length(BinaryPrimitives.ReadInt64LittleEndian(Bytes(8)), MaxStringBytes, "BINBYTES8")); break;
                case 0x96: PushBytes(Length(BinaryPrimitives.ReadInt64LittleEndian(Bytes(8)), MaxStringBytes, "BYTEARRAY8")); break;
                case (byte)'}': Push(Counted(new PickleDict())); break; // EMPTY_DICT
                case (byte)']': Push(Counted(new PickleList())); break; // EMPTY_LIST
                case (byte)')': Push(Counted(new PickleTuple([]))); break; // EMPTY_TUPLE
                case 0x8f: Push(Counted(new PickleSet())); break; // EMPTY_SET
                case (byte)'t': Push(Counted(new PickleTuple(PopMark()))); break; // TUPLE
                case 0x85: Push(Counted(new PickleTuple([Pop()]))); break; // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(Counted(new PickleTuple([a, b]))); break; } // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(Counted(new PickleTuple([a, b, c]))); break; } // TUPLE3
                case (byte)'l': { var l = new PickleList(); l.Items.AddRange(PopMark()); Push(Counted(l)); break; } // LIST
                case (byte)'d': { var d = new PickleDict(); SetItems(d, PopMark()); Push(Counted(d)); break; } // DICT
                case 0x91: { var s = new PickleSet(); s.Items.AddRange(PopMark()); Push(Counted(s)); break; } // FROZENSET
                case (byte)'a': { var v = Pop(); Target<PickleList>("APPEND").Items.Add(v); break; }
                case (byte)'e': { var items = PopMark(); Target<PickleList>("APPENDS").Items.AddRange(items); break; }
                case 0x90: { var items = PopMark(); Target<PickleSet>("ADDITEMS").Items.AddRange(items); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); SetItems(Target<PickleDict>("SETITEM"), [k, v]); break; }
                case (byte)'u': { var items = PopMark(); SetItems(Target<PickleDict>("SETITEMS"), items); break; }
                case (byte)'q': Put(U8()); break; // BINPUT
                case (byte)'r': Put(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4))); break; // LONG_BINPUT
                case 0x94: Put(_memo.Count); break; // MEMOIZE
                case (byte)'h': Get(U8()); break; // BINGET
                case (byte)'j': Get(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4))); break; // LONG_BINGET
                case (byte)'c': { var module = Line(); var name = Line(); Push(Resolve(module, name, "GLOBAL")); break; } // GLOBAL
                case 0x93: // STACK_GLOBAL
                    {
                        var name = Pop(); var module = Pop();
                        if (module is not string m || name is not string n) throw Fail("STACK_GLOBAL of values that are not strings");
                        Push(Resolve(m, n, "STACK_GLOBAL"));
                        break;
                    }
                case (byte)'R': // REDUCE
                    {
                        var args = Pop(); var fn = Pop();
                        if (fn is not PickleGlobal g) throw Fail($"REDUCE calls {TorchGlobals.Describe(fn)}, which is not an allow-listed function; nothing was run");
                        if (args is not PickleTuple t) throw Fail($"REDUCE of {g.FullName} with {TorchGlobals.Describe(args)} instead of an argument tuple");
                        Push(TorchGlobals.Call(g, t.Items, Fail));
                        break;
                    }
                case 0x81: { var args = Pop(); New(Pop(), args, null); break; } // NEWOBJ
                case 0x92: { var kwargs = Pop(); var args = Pop(); New(Pop(), args, kwargs); break; } // NEWOBJ_EX
                case (byte)'b': Build(Pop(), Peek()); break; // BUILD
                case (byte)'Q': Push(_persistentLoad(Pop(), Fail)); break; // BINPERSID
                case (byte)'P': Push(_persistentLoad(Line(), Fail)); break; // PERSID
                case (byte)'i': // INST: module and name inline, then a call; refused like GLOBAL names them
                    {
                        var module = Line(); var name = Line();
                        throw Refused($"{module}.{name}", "INST");
                    }
                case (byte)'o': throw Fail("refused opcode OBJ (which constructs an object of any class); nothing was run");
                case 0x82 or 0x83 or 0x84: throw Fail("refused opcode EXT (the copyreg extension registry); nothing was run");
                case 0x97 or 0x98: throw Fail("refused out-of-band buffer opcode (NEXT_BUFFER/READONLY_BUFFER)");
                default:
                    throw Fail($"unsupported pickle opcode 0x{op:x2} ('{(op is >= 0x20 and < 0x7f ? (char)op : '?')}'); a PyTorch checkpoint uses protocol 2 binary opcodes");
            }
        }
    }

    private MergeException Refused(string fullName, string opcode) =>
        new($"{_where}: refused: the pickle names '{TorchGlobals.Printable(fullName, 80)}' (opcode {opcode} at byte {OpAt} of the pickle), which is not on the allow-list of a weights-only checkpoint; nothing was run (see docs/checkpoints.md)");

    private PickleGlobal Resolve(string module, string name, string opcode)
    {
        var full = module + "." + name;
        if (!TorchGlobals.IsAllowed(full)) throw Refused(full, opcode);
        return Counted(new PickleGlobal(module, name));
    }

    private void New(object? cls, object? args, object? kwargs)
    {
        if (cls is not PickleGlobal g) throw Fail($"NEWOBJ of {TorchGlobals.Describe(cls)}, which is not a class; nothing was run");
        if (g.FullName != TorchGlobals.OrderedDict) throw Fail($"NEWOBJ of '{g.FullName}', which only OrderedDict may be");
        if (args is not PickleTuple { Items.Length: 0 } || kwargs is not (null or PickleDict { Items.Count: 0 }))
            throw Fail($"NEWOBJ of '{g.FullName}' with arguments");
        Push(Counted(new PickleDict()));
    }

    private void Build(object? state, object? target)
    {
        // an OrderedDict state_dict carries its _metadata as instance state; a tensor may carry (empty) Python state
        if (target is PickleDict d) { d.State = state; return; }
        if (target is TorchTensor && state is null or PickleDict or PickleTuple) return;
        throw Fail($"BUILD of {TorchGlobals.Describe(target)}, which takes no state");
    }

    private void SetItems(PickleDict d, object?[] kv)
    {
        if (kv.Length % 2 != 0) throw Fail("SETITEMS with an odd number of values");
        for (int i = 0; i < kv.Length; i += 2)
        {
            if (kv[i] is PickleList or PickleDict or PickleSet) throw Fail($"{TorchGlobals.Describe(kv[i])} used as a dict key (unhashable)");
            d.Set(kv[i], kv[i + 1]);
        }
    }

    private T Target<T>(string opcode) where T : class =>
        Peek() as T ?? throw Fail($"{opcode} on {TorchGlobals.Describe(Peek())}");

    private void Put(long index)
    {
        if (_memo.Count >= MaxValues && !_memo.ContainsKey(index)) throw Fail($"more than {MaxValues} memo entries");
        _memo[index] = Peek();
    }

    private void Get(long index)
    {
        if (!_memo.TryGetValue(index, out var v)) throw Fail($"memo entry {index} read before it was written");
        Push(v);
    }

    private T Counted<T>(T v)
    {
        if (++_values > MaxValues) throw Fail($"more than {MaxValues} values (a pickle bomb or not a checkpoint)");
        return v;
    }

    private void Push(object? v)
    {
        if (_stack.Count >= MaxValues) throw Fail($"stack deeper than {MaxValues}");
        _stack.Add(v);
    }

    private object? Pop()
    {
        int floor = _marks.Count == 0 ? 0 : _marks[^1];
        if (_stack.Count <= floor) throw Fail("stack underflow");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object? Peek()
    {
        int floor = _marks.Count == 0 ? 0 : _marks[^1];
        if (_stack.Count <= floor) throw Fail("stack underflow");
        return _stack[^1];
    }

    private object?[] PopMark()
    {
        if (_marks.Count == 0) throw Fail("no MARK to pop to");
        int at = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(at, _stack.Count - at).ToArray();
        _stack.RemoveRange(at, _stack.Count - at);
        return items;
    }

    private void PushLong(int n)
    {
        var bytes = Bytes(n);
        if (n <= 8)
        {
            long v = 0;
            for (int i = n - 1; i >= 0; i--) v = (v << 8) | bytes[i];
            if (n > 0 && n < 8 && (bytes[n - 1] & 0x80) != 0) v -= 1L << (8 * n); // two's complement of n bytes
            Push(v);
        }
        else Push(Counted(new BigInteger(bytes, isUnsigned: false, isBigEndian: false)));
    }

    private void PushText(int n)
    {
        var b = Bytes(n);
        try { Push(Counted(new UTF8Encoding(false, true).GetString(b))); }
        catch (DecoderFallbackException) { throw Fail("string is not valid UTF-8"); }
    }

    private void PushLatin1(int n) => Push(Counted(Encoding.Latin1.GetString(Bytes(n))));
    private void PushBytes(int n) => Push(Counted(Bytes(n).ToArray()));

    private int Length(long n, int max, string opcode)
    {
        if (n < 0 || n > max) throw Fail($"{opcode} of {n} bytes (at most {max})");
        return (int)n;
    }

    private byte U8() => Bytes(1)[0];

    private long I64() => BinaryPrimitives.ReadInt64LittleEndian(Bytes(8));

    private ReadOnlySpan<byte> Bytes(int n)
    {
        if (n > _end - _pos) throw Fail(_pos >= _end ? "the pickle ends without a STOP (truncated)" : $"the pickle ends inside a value ({n} bytes needed, {_end - _pos} left; truncated)");
        var span = new ReadOnlySpan<byte>(_data + _pos, n);
        _pos += n;
        return span;
    }

    /// <summary>A newline-terminated UTF-8 line (GLOBAL, INST, PERSID), at most 1024 bytes.</summary>
    private string Line()
    {
        long limit = Math.Min(_end - _pos, 1024);
        var span = new ReadOnlySpan<byte>(_data + _pos, (int)limit);
        int nl = span.IndexOf((byte)'\n');
        if (nl < 0) throw Fail(limit < 1024 ? "the pickle ends inside a name (truncated)" : "a name longer than 1024 bytes");
        _pos += nl + 1;
        try { return new UTF8Encoding(false, true).GetString(span[..nl]); }
        catch (DecoderFallbackException) { throw Fail("name is not valid UTF-8"); }
    }
}
