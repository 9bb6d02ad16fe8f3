using System.Security.Cryptography;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.Tls;
using Org.BouncyCastle.Tls.Crypto;
using Org.BouncyCastle.Tls.Crypto.Impl.BC;
using HashAlgorithm = Org.BouncyCastle.Tls.HashAlgorithm;

namespace Forewarn.Core.Aaa.Eap;

/// <summary>
/// BouncyCastle's TLS with the peer's RSA and ECDSA signatures verified by .NET (OpenSSL) instead of
/// BouncyCastle's managed code. Measured: BouncyCastle tests every RSA public key it builds for
/// primality (Miller-Rabin over the 2,048-bit modulus), about 17 ms of CPU per EAP-TLS
/// authentication on this machine's cores, against well under a millisecond for OpenSSL's
/// verification. Everything else (record layer, key exchange, key schedule) stays BouncyCastle's.
/// </summary>
public sealed class EapTlsCrypto() : BcTlsCrypto(new SecureRandom())
{
    public static readonly EapTlsCrypto Shared = new();

    public override TlsCertificate CreateCertificate(short type, byte[] encoding) =>
        type == CertificateType.X509 ? new Certificate(this, encoding) : base.CreateCertificate(type, encoding);

    private sealed class Certificate(BcTlsCrypto crypto, byte[] encoding) : BcTlsCertificate(crypto, encoding)
    {
        private bool IsRsa => SubjectPublicKeyInfo.Algorithm.Algorithm.Equals(Org.BouncyCastle.Asn1.Pkcs.PkcsObjectIdentifiers.RsaEncryption);
        private bool IsEc => SubjectPublicKeyInfo.Algorithm.Algorithm.Equals(Org.BouncyCastle.Asn1.X9.X9ObjectIdentifiers.IdECPublicKey);

        /// <summary>A fresh .NET key from the certificate's SubjectPublicKeyInfo (the verifier disposes it).</summary>
        private AsymmetricAlgorithm NewKey()
        {
            AsymmetricAlgorithm key = IsRsa ? RSA.Create() : ECDsa.Create();
            try
            {
                key.ImportSubjectPublicKeyInfo(SubjectPublicKeyInfo.GetEncoded(), out _);
                return key;
            }
            catch
            {
                key.Dispose();
                throw;
            }
        }

        /// <summary>TLS 1.2: CertificateVerify and ServerKeyExchange signatures.</summary>
        public override TlsVerifier CreateVerifier(short signatureAlgorithm)
        {
            bool rsa = signatureAlgorithm is SignatureAlgorithm.rsa or SignatureAlgorithm.rsa_pss_rsae_sha256 or SignatureAlgorithm.rsa_pss_rsae_sha384 or SignatureAlgorithm.rsa_pss_rsae_sha512;
            if (!(rsa ? IsRsa : signatureAlgorithm == SignatureAlgorithm.ecdsa && IsEc))
                return base.CreateVerifier(signatureAlgorithm);
            ValidateKeyUsage(Org.BouncyCastle.Asn1.X509.KeyUsage.DigitalSignature);
            if (signatureAlgorithm == SignatureAlgorithm.rsa)
                ValidateRsa_Pkcs1();
            else if (rsa)
                ValidateRsa_Pss_Rsae();
            return new Verifier(NewKey());
        }

        /// <summary>TLS 1.3: CertificateVerify by signature scheme.</summary>
        public override Tls13Verifier CreateVerifier(int signatureScheme)
        {
            var (hash, pss) = signatureScheme switch
            {
                SignatureScheme.rsa_pss_rsae_sha256 => (HashAlgorithmName.SHA256, true),
                SignatureScheme.rsa_pss_rsae_sha384 => (HashAlgorithmName.SHA384, true),
                SignatureScheme.rsa_pss_rsae_sha512 => (HashAlgorithmName.SHA512, true),
                SignatureScheme.ecdsa_secp256r1_sha256 => (HashAlgorithmName.SHA256, false),
                SignatureScheme.ecdsa_secp384r1_sha384 => (HashAlgorithmName.SHA384, false),
                _ => (default(HashAlgorithmName), false),
            };
            if (hash == default || !(pss ? IsRsa : IsEc))
                return base.CreateVerifier(signatureScheme);
            ValidateKeyUsage(Org.BouncyCastle.Asn1.X509.KeyUsage.DigitalSignature);
            if (pss)
                ValidateRsa_Pss_Rsae();
            return new Verifier(NewKey()).For(hash, pss);
        }
    }

    /// <summary>The signed data; BouncyCastle disposes the stream when it has written it, and the bytes must outlive that.</summary>
    private sealed class Sink(List<byte> bytes) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => bytes.Count;
        public override long Position { get => bytes.Count; set => throw new NotSupportedException(); }
        public override void Write(byte[] buffer, int offset, int count) => bytes.AddRange(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer) => bytes.AddRange(buffer);
        public override void WriteByte(byte value) => bytes.Add(value);
        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    /// <summary>Collects the signed data, then verifies it with the .NET key.</summary>
    private sealed class Verifier(AsymmetricAlgorithm key) : TlsVerifier, TlsStreamVerifier, Tls13Verifier
    {
        private readonly List<byte> _data = new(512);
        private HashAlgorithmName _hash;
        private bool _pss;
        private byte[] _signature = [];

        public Verifier For(HashAlgorithmName hash, bool pss)
        {
            _hash = hash;
            _pss = pss;
            return this;
        }

        public TlsStreamVerifier GetStreamVerifier(DigitallySigned digitallySigned)
        {
            var algorithm = digitallySigned.Algorithm;
            bool pss = algorithm.Hash == HashAlgorithm.Intrinsic;
            short hash = pss ? algorithm.Signature switch
            {
                SignatureAlgorithm.rsa_pss_rsae_sha384 => HashAlgorithm.sha384,
                SignatureAlgorithm.rsa_pss_rsae_sha512 => HashAlgorithm.sha512,
                _ => HashAlgorithm.sha256,
            } : algorithm.Hash;
            _signature = digitallySigned.Signature;
            return For(hash switch
            {
                HashAlgorithm.sha1 => HashAlgorithmName.SHA1,
                HashAlgorithm.sha384 => HashAlgorithmName.SHA384,
                HashAlgorithm.sha512 => HashAlgorithmName.SHA512,
                _ => HashAlgorithmName.SHA256,
            }, pss);
        }

        public bool VerifyRawSignature(DigitallySigned digitallySigned, byte[] hash) =>
            throw new NotSupportedException("verification goes through the stream verifier");

        public Stream Stream => new Sink(_data);

        public bool IsVerified() => VerifySignature(_signature);

        public bool VerifySignature(byte[] signature)
        {
            var data = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_data);
            try
            {
                return key switch
                {
                    RSA rsa => rsa.VerifyData(data, signature, _hash, _pss ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1),
                    ECDsa ecdsa => ecdsa.VerifyData(data, signature, _hash, DSASignatureFormat.Rfc3279DerSequence),
                    _ => false,
                };
            }
            catch (CryptographicException)
            {
                return false;
            }
            finally
            {
                key.Dispose();
            }
        }
    }
}
