using System.Buffers.Binary;
using System.Text;

namespace Forewarn.Protocol.Tacacs;

/// <summary>Authentication START actions (RFC 8907 §5.1).</summary>
public enum AuthenAction : byte { Login = 1, ChangePassword = 2, SendAuth = 4 }

/// <summary>authen_type (RFC 8907 §5.1).</summary>
public enum AuthenType : byte { NotSet = 0, Ascii = 1, Pap = 2, Chap = 3, Arap = 4, MsChap = 5, MsChapV2 = 6 }

/// <summary>authen_service (RFC 8907 §5.1).</summary>
public enum AuthenService : byte { None = 0, Login = 1, Enable = 2, Ppp = 3, Pt = 5, Rcmd = 6, X25 = 7, Nasi = 8, FwProxy = 9 }

/// <summary>Authentication REPLY status (RFC 8907 §5.2).</summary>
public enum AuthenStatus : byte { Pass = 1, Fail = 2, GetData = 3, GetUser = 4, GetPass = 5, Restart = 6, Error = 7, Follow = 0x21 }

/// <summary>authen_method of authorization and accounting requests (RFC 8907 §6.1).</summary>
public enum AuthenMethod : byte { NotSet = 0, None = 1, Krb5 = 2, Line = 3, Enable = 4, Local = 5, TacacsPlus = 6, Guest = 8, Radius = 0x10, Krb4 = 0x11, Rcmd = 0x20 }

/// <summary>Authorization RESPONSE status (RFC 8907 §6.2).</summary>
public enum AuthorStatus : byte { PassAdd = 1, PassReplace = 2, Fail = 0x10, Error = 0x11, Follow = 0x21 }

/// <summary>Accounting REQUEST flags (RFC 8907 §7.1).</summary>
[Flags]
public enum AcctFlags : byte { None = 0, Start = 0x02, Stop = 0x04, Watchdog = 0x08 }

/// <summary>Accounting REPLY status (RFC 8907 §7.2).</summary>
public enum AcctStatus : byte { Success = 1, Error = 2, Follow = 0x21 }

/// <summary>
/// One of the seven TACACS+ bodies (RFC 8907 §5–7). Which one a packet holds follows from its type and
/// sequence number: authentication 1 is START, other odd ones CONTINUE, even ones REPLY; authorization and
/// accounting odd ones are REQUESTs, even ones the server's answer. Text fields are kept as octets (a NAS
/// may send any); <see cref="Text"/> reads them as UTF-8.
/// </summary>
public abstract record TacacsBody
{
    public abstract TacacsType Type { get; }

    /// <summary>Writes the body; returns its length.</summary>
    public abstract int Encode(Span<byte> destination);

    public static string Text(byte[] octets) => Encoding.UTF8.GetString(octets);

    public static TacacsError TryDecode(TacacsHeader header, ReadOnlySpan<byte> body, out TacacsBody? decoded)
    {
        decoded = null;
        var reader = new Reader(body);
        TacacsBody? result = header.Type switch
        {
            TacacsType.Authentication when header.Sequence == 1 => AuthenStart.Read(ref reader),
            TacacsType.Authentication when header.FromClient => AuthenContinue.Read(ref reader),
            TacacsType.Authentication => AuthenReply.Read(ref reader),
            TacacsType.Authorization when header.FromClient => AuthorRequest.Read(ref reader),
            TacacsType.Authorization => AuthorResponse.Read(ref reader),
            TacacsType.Accounting when header.FromClient => AcctRequest.Read(ref reader),
            TacacsType.Accounting => AcctReply.Read(ref reader),
            _ => null,
        };
        if (result is null || reader.Failed)
            return TacacsError.FieldOverrun;
        if (!reader.AtEnd)
            return TacacsError.FieldOverrun; // RFC 8907: the fields' lengths add up to the body's
        decoded = result;
        return TacacsError.None;
    }

    /// <summary>A bounds-checked cursor: any read past the end sets <see cref="Failed"/> and yields zeros.</summary>
    internal ref struct Reader(ReadOnlySpan<byte> octets)
    {
        private readonly ReadOnlySpan<byte> _octets = octets;
        private int _at;

        public bool Failed { get; private set; }
        public readonly bool AtEnd => _at == _octets.Length;

        public byte U8()
        {
            if (_at + 1 > _octets.Length)
            {
                Failed = true;
                return 0;
            }
            return _octets[_at++];
        }

        public int U16()
        {
            if (_at + 2 > _octets.Length)
            {
                Failed = true;
                return 0;
            }
            int value = BinaryPrimitives.ReadUInt16BigEndian(_octets[_at..]);
            _at += 2;
            return value;
        }

        public byte[] Bytes(int length)
        {
            if (Failed || _at + length > _octets.Length)
            {
                Failed = true;
                return [];
            }
            var value = _octets.Slice(_at, length).ToArray();
            _at += length;
            return value;
        }
    }

    /// <summary>Writes fields in order; the caller sized the destination (bodies are at most a few KiB).</summary>
    internal ref struct Writer(Span<byte> destination)
    {
        private readonly Span<byte> _destination = destination;

        public int Length { get; private set; }

        public void U8(int value) => _destination[Length++] = checked((byte)value);

        public void U16(int value)
        {
            BinaryPrimitives.WriteUInt16BigEndian(_destination[Length..], checked((ushort)value));
            Length += 2;
        }

        public void Bytes(ReadOnlySpan<byte> value)
        {
            value.CopyTo(_destination[Length..]);
            Length += value.Length;
        }
    }

    internal static byte[][] ReadArguments(ref Reader reader, int[] lengths)
    {
        var arguments = new byte[lengths.Length][];
        for (int i = 0; i < lengths.Length; i++)
            arguments[i] = reader.Bytes(lengths[i]);
        return arguments;
    }

    internal static int[] ReadLengths(ref Reader reader, int count)
    {
        var lengths = new int[count];
        for (int i = 0; i < count; i++)
            lengths[i] = reader.U8();
        return lengths;
    }

    /// <summary>
    /// The fields authorization and accounting requests share (RFC 8907 §6.1, §7.1): authen_method,
    /// priv_lvl, authen_type, authen_service, the three lengths, arg_cnt and the argument lengths, then
    /// user, port, rem_addr and the arguments.
    /// </summary>
    internal readonly record struct RequestFields(AuthenMethod Method, byte PrivilegeLevel, AuthenType AuthenType, AuthenService Service,
        byte[] User, byte[] Port, byte[] RemoteAddress, IReadOnlyList<byte[]> Arguments)
    {
        public static RequestFields Read(ref Reader reader)
        {
            var method = (AuthenMethod)reader.U8();
            byte privilege = reader.U8();
            var type = (AuthenType)reader.U8();
            var service = (AuthenService)reader.U8();
            int user = reader.U8(), port = reader.U8(), remote = reader.U8();
            var lengths = ReadLengths(ref reader, reader.U8());
            return new RequestFields(method, privilege, type, service, reader.Bytes(user), reader.Bytes(port), reader.Bytes(remote), ReadArguments(ref reader, lengths));
        }

        public void Write(ref Writer writer)
        {
            writer.U8((byte)Method);
            writer.U8(PrivilegeLevel);
            writer.U8((byte)AuthenType);
            writer.U8((byte)Service);
            writer.U8(User.Length);
            writer.U8(Port.Length);
            writer.U8(RemoteAddress.Length);
            writer.U8(Arguments.Count);
            foreach (var argument in Arguments)
                writer.U8(argument.Length);
            writer.Bytes(User);
            writer.Bytes(Port);
            writer.Bytes(RemoteAddress);
            foreach (var argument in Arguments)
                writer.Bytes(argument);
        }
    }
}

/// <summary>Authentication START (RFC 8907 §5.1), the client's first packet of a session.</summary>
public sealed record AuthenStart(AuthenAction Action, byte PrivilegeLevel, AuthenType AuthenType, AuthenService Service,
    byte[] User, byte[] Port, byte[] RemoteAddress, byte[] Data) : TacacsBody
{
    public override TacacsType Type => TacacsType.Authentication;

    internal static AuthenStart Read(ref Reader reader)
    {
        var action = (AuthenAction)reader.U8();
        byte privilege = reader.U8();
        var type = (AuthenType)reader.U8();
        var service = (AuthenService)reader.U8();
        int user = reader.U8(), port = reader.U8(), remote = reader.U8(), data = reader.U8();
        return new AuthenStart(action, privilege, type, service, reader.Bytes(user), reader.Bytes(port), reader.Bytes(remote), reader.Bytes(data));
    }

    public override int Encode(Span<byte> destination)
    {
        var writer = new Writer(destination);
        writer.U8((byte)Action);
        writer.U8(PrivilegeLevel);
        writer.U8((byte)AuthenType);
        writer.U8((byte)Service);
        writer.U8(User.Length);
        writer.U8(Port.Length);
        writer.U8(RemoteAddress.Length);
        writer.U8(Data.Length);
        writer.Bytes(User);
        writer.Bytes(Port);
        writer.Bytes(RemoteAddress);
        writer.Bytes(Data);
        return writer.Length;
    }
}

/// <summary>Authentication REPLY (RFC 8907 §5.2), the server's answer at each step.</summary>
public sealed record AuthenReply(AuthenStatus Status, byte Flags, byte[] ServerMessage, byte[] Data) : TacacsBody
{
    /// <summary>The client should not echo what the user types next (a password).</summary>
    public const byte NoEcho = 0x01;

    public override TacacsType Type => TacacsType.Authentication;

    internal static AuthenReply Read(ref Reader reader)
    {
        var status = (AuthenStatus)reader.U8();
        byte flags = reader.U8();
        int message = reader.U16(), data = reader.U16();
        return new AuthenReply(status, flags, reader.Bytes(message), reader.Bytes(data));
    }

    public override int Encode(Span<byte> destination)
    {
        var writer = new Writer(destination);
        writer.U8((byte)Status);
        writer.U8(Flags);
        writer.U16(ServerMessage.Length);
        writer.U16(Data.Length);
        writer.Bytes(ServerMessage);
        writer.Bytes(Data);
        return writer.Length;
    }
}

/// <summary>Authentication CONTINUE (RFC 8907 §5.3): what the user typed, or an abort.</summary>
public sealed record AuthenContinue(byte[] UserMessage, byte[] Data, byte Flags) : TacacsBody
{
    /// <summary>The client abandons the session.</summary>
    public const byte Abort = 0x01;

    public override TacacsType Type => TacacsType.Authentication;

    internal static AuthenContinue Read(ref Reader reader)
    {
        int message = reader.U16(), data = reader.U16();
        byte flags = reader.U8();
        return new AuthenContinue(reader.Bytes(message), reader.Bytes(data), flags);
    }

    public override int Encode(Span<byte> destination)
    {
        var writer = new Writer(destination);
        writer.U16(UserMessage.Length);
        writer.U16(Data.Length);
        writer.U8(Flags);
        writer.Bytes(UserMessage);
        writer.Bytes(Data);
        return writer.Length;
    }
}

/// <summary>Authorization REQUEST (RFC 8907 §6.1): a service or command, as attribute-value arguments.</summary>
public sealed record AuthorRequest(AuthenMethod Method, byte PrivilegeLevel, AuthenType AuthenType, AuthenService Service,
    byte[] User, byte[] Port, byte[] RemoteAddress, IReadOnlyList<byte[]> Arguments) : TacacsBody
{
    public override TacacsType Type => TacacsType.Authorization;

    internal static AuthorRequest Read(ref Reader reader)
    {
        var c = RequestFields.Read(ref reader);
        return new AuthorRequest(c.Method, c.PrivilegeLevel, c.AuthenType, c.Service, c.User, c.Port, c.RemoteAddress, c.Arguments);
    }

    public override int Encode(Span<byte> destination)
    {
        var writer = new Writer(destination);
        new RequestFields(Method, PrivilegeLevel, AuthenType, Service, User, Port, RemoteAddress, Arguments).Write(ref writer);
        return writer.Length;
    }
}

/// <summary>Authorization RESPONSE (RFC 8907 §6.2).</summary>
public sealed record AuthorResponse(AuthorStatus Status, byte[] ServerMessage, byte[] Data, IReadOnlyList<byte[]> Arguments) : TacacsBody
{
    public override TacacsType Type => TacacsType.Authorization;

    internal static AuthorResponse Read(ref Reader reader)
    {
        var status = (AuthorStatus)reader.U8();
        int count = reader.U8();
        int message = reader.U16(), data = reader.U16();
        var lengths = ReadLengths(ref reader, count);
        return new AuthorResponse(status, reader.Bytes(message), reader.Bytes(data), ReadArguments(ref reader, lengths));
    }

    public override int Encode(Span<byte> destination)
    {
        var writer = new Writer(destination);
        writer.U8((byte)Status);
        writer.U8(Arguments.Count);
        writer.U16(ServerMessage.Length);
        writer.U16(Data.Length);
        foreach (var argument in Arguments)
            writer.U8(argument.Length);
        writer.Bytes(ServerMessage);
        writer.Bytes(Data);
        foreach (var argument in Arguments)
            writer.Bytes(argument);
        return writer.Length;
    }
}

/// <summary>Accounting REQUEST (RFC 8907 §7.1): start, stop or watchdog, with arguments.</summary>
public sealed record AcctRequest(AcctFlags Flags, AuthenMethod Method, byte PrivilegeLevel, AuthenType AuthenType, AuthenService Service,
    byte[] User, byte[] Port, byte[] RemoteAddress, IReadOnlyList<byte[]> Arguments) : TacacsBody
{
    public override TacacsType Type => TacacsType.Accounting;

    internal static AcctRequest Read(ref Reader reader)
    {
        var flags = (AcctFlags)reader.U8();
        var c = RequestFields.Read(ref reader);
        return new AcctRequest(flags, c.Method, c.PrivilegeLevel, c.AuthenType, c.Service, c.User, c.Port, c.RemoteAddress, c.Arguments);
    }

    public override int Encode(Span<byte> destination)
    {
        var writer = new Writer(destination);
        writer.U8((byte)Flags);
        new RequestFields(Method, PrivilegeLevel, AuthenType, Service, User, Port, RemoteAddress, Arguments).Write(ref writer);
        return writer.Length;
    }
}

/// <summary>Accounting REPLY (RFC 8907 §7.2).</summary>
public sealed record AcctReply(byte[] ServerMessage, byte[] Data, AcctStatus Status) : TacacsBody
{
    public override TacacsType Type => TacacsType.Accounting;

    internal static AcctReply Read(ref Reader reader)
    {
        int message = reader.U16(), data = reader.U16();
        var status = (AcctStatus)reader.U8();
        return new AcctReply(reader.Bytes(message), reader.Bytes(data), status);
    }

    public override int Encode(Span<byte> destination)
    {
        var writer = new Writer(destination);
        writer.U16(ServerMessage.Length);
        writer.U16(Data.Length);
        writer.U8((byte)Status);
        writer.Bytes(ServerMessage);
        writer.Bytes(Data);
        return writer.Length;
    }
}
