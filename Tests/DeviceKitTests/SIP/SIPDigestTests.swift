import Testing

@testable import DeviceKit

/// Digest authentication (RFC 2617, RFC 7616, RFC 8760) against the known answers the RFCs publish, and one
/// computed with Python's hashlib.
@Suite struct SIPDigestTests {
    /// RFC 2617 §3.5: Mufasa, "Circle Of Life", GET /dir/index.html.
    @Test func theRFC2617ExampleGivesItsPublishedResponse() throws {
        let challenge = try SIPDigestChallenge(parsing: """
            Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", \
            opaque="5ccc069c403ebaf9f0171e9517f40e41"
            """)
        #expect(challenge == SIPDigestChallenge(
            realm: "testrealm@host.com", nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque: "5ccc069c403ebaf9f0171e9517f40e41",
            algorithm: .md5, qop: ["auth", "auth-int"]))
        let credentials = SIPDigestCredentials(username: "Mufasa", password: "Circle Of Life")
        let value = credentials.authorization(
            for: challenge, method: SIPMethod(rawValue: "GET"), uri: "/dir/index.html", cnonce: "0a4f113b", nonceCount: 1)
        #expect(value == """
            Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", \
            uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", \
            qop=auth, nc=00000001, opaque="5ccc069c403ebaf9f0171e9517f40e41"
            """)
        let received = try SIPDigestAuthorization(parsing: value)
        #expect(received.verify(password: "Circle Of Life", method: SIPMethod(rawValue: "GET")))
        #expect(!received.verify(password: "Circle of Life", method: SIPMethod(rawValue: "GET")))
        #expect(!received.verify(password: "Circle Of Life", method: .register))
    }

    /// RFC 7616 §3.9.1: the same user with MD5 and with SHA-256; the server's Authorization values as printed.
    @Test(arguments: [
        (SIPDigestChallenge.Algorithm.md5, "8ca523f5e9506fed4657c9700eebdbec"),
        (.sha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ])
    func theRFC7616ExamplesGiveTheirPublishedResponses(algorithm: SIPDigestChallenge.Algorithm, response: String) throws {
        let challenge = try SIPDigestChallenge(parsing: """
            Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=\(algorithm.rawValue), \
            nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
            """)
        #expect(challenge.qop == ["auth", "auth-int"] && challenge.algorithm == algorithm)
        let value = SIPDigestCredentials(username: "Mufasa", password: "Circle of Life").authorization(
            for: challenge, method: SIPMethod(rawValue: "GET"), uri: "/dir/index.html",
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", nonceCount: 1)
        #expect(value.contains("response=\"\(response)\""))
        // The server side reads the RFC's own Authorization value and accepts it.
        let printed = try SIPDigestAuthorization(parsing: """
            Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=\(algorithm.rawValue), \
            nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, \
            cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="\(response)", \
            opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
            """)
        #expect(printed.nc == 1 && printed.qop == "auth" && printed.algorithm == algorithm)
        #expect(printed.verify(password: "Circle of Life", method: SIPMethod(rawValue: "GET")))
        #expect(!printed.verify(password: "Circle of life", method: SIPMethod(rawValue: "GET")))
    }

    /// SHA-256-sess with auth-int (the body is hashed into HA2), computed outside Swift:
    /// ```
    /// python3 -c 'import hashlib
    /// H=lambda s: hashlib.sha256(s.encode()).hexdigest()
    /// ha1=H(H("device-42:devicekit.example:s3cret")+":nonce123:cn0nce")
    /// ha2=H("REGISTER:sip:devicekit.example:"+hashlib.sha256(b"hello").hexdigest())
    /// print(H(ha1+":nonce123:00000002:cn0nce:auth-int:"+ha2))'
    /// ```
    @Test func sha256SessWithAuthIntMatchesHashlib() throws {
        let challenge = try SIPDigestChallenge(parsing: "Digest realm=\"devicekit.example\",nonce=\"nonce123\",algorithm=sha-256-SESS,qop=\"auth-int\"")
        #expect(challenge.algorithm == .sha256Sess && challenge.opaque == nil)
        let value = SIPDigestCredentials(username: "device-42", password: "s3cret").authorization(
            for: challenge, method: .register, uri: "sip:devicekit.example", body: Array("hello".utf8), cnonce: "cn0nce", nonceCount: 2)
        #expect(value == """
            Digest username="device-42", realm="devicekit.example", nonce="nonce123", uri="sip:devicekit.example", \
            response="e2400ac4a346e13f1272e302b16c8d33639c258ccee5f92a17bce1ce269b7891", algorithm=SHA-256-sess, \
            cnonce="cn0nce", qop=auth-int, nc=00000002
            """)
        let received = try SIPDigestAuthorization(parsing: value)
        #expect(received.verify(password: "s3cret", method: .register, body: Array("hello".utf8)))
        #expect(!received.verify(password: "s3cret", method: .register, body: Array("hellO".utf8)))
    }

    /// A challenge without qop is answered RFC 2069 style: no cnonce, qop or nc. (Python:
    /// `H(H("alice:atlanta.com:pw")+":84a4cc6f3082121f32b42a2187831a9e:"+H("INVITE:sip:bob@biloxi.com"))` with MD5.)
    @Test func aChallengeWithoutQopIsAnsweredWithoutCnonceOrCount() throws {
        let challenge = try SIPDigestChallenge(parsing: "Digest realm=\"atlanta.com\", nonce=\"84a4cc6f3082121f32b42a2187831a9e\"")
        #expect(challenge.qop.isEmpty && challenge.algorithm == .md5 && !challenge.stale)
        let value = SIPDigestCredentials(username: "alice", password: "pw").authorization(
            for: challenge, method: .invite, uri: "sip:bob@biloxi.com", cnonce: "unused", nonceCount: 1)
        #expect(value == """
            Digest username="alice", realm="atlanta.com", nonce="84a4cc6f3082121f32b42a2187831a9e", uri="sip:bob@biloxi.com", \
            response="f21454067c21c8465647058649d02960", algorithm=MD5
            """)
        #expect(try SIPDigestAuthorization(parsing: value).verify(password: "pw", method: .invite))
    }

    @Test func theStrongestOfSeveralChallengesIsChosen() throws {
        let md5 = "Digest realm=\"r\", nonce=\"n1\", qop=\"auth\", algorithm=MD5"
        let sha = "Digest realm=\"r\", nonce=\"n2\", qop=\"auth\", algorithm=SHA-256"
        let unknown = "Digest realm=\"r\", nonce=\"n3\", algorithm=SHA-512-256"
        #expect(SIPDigestChallenge.best(of: [md5, sha])?.nonce == "n2")
        #expect(SIPDigestChallenge.best(of: [sha, md5])?.nonce == "n2")
        #expect(SIPDigestChallenge.best(of: [unknown, md5])?.nonce == "n1")
        #expect(SIPDigestChallenge.best(of: ["Basic realm=\"r\"", unknown]) == nil)
        #expect(throws: SIPParseError.badChallenge(unknown, "names an algorithm we do not support (MD5, MD5-sess, SHA-256, SHA-256-sess)")) {
            try SIPDigestChallenge(parsing: unknown)
        }
    }

    @Test func aChallengeSerialisesBackAndReadsStale() throws {
        let challenge = try SIPDigestChallenge(parsing: "digest  realm=\"a \\\"b\\\"\" ,nonce=xyz, stale=TRUE, opaque=\"o\", qop=\"auth\"")
        #expect(challenge.realm == "a \"b\"" && challenge.nonce == "xyz" && challenge.stale)
        #expect(challenge.description == "Digest realm=\"a \\\"b\\\"\", nonce=\"xyz\", opaque=\"o\", algorithm=MD5, qop=\"auth\", stale=true")
        #expect(try SIPDigestChallenge(parsing: challenge.description) == challenge)
    }

    @Test func malformedChallengesAndAuthorizationsAreTypedErrorsWithoutSecrets() {
        for bad in ["", "Digest", "Digest realm=\"r\"", "Digest nonce=\"n\"", "Digest realm=\"r\", nonce=\"n", "Digest realm=\"r\" nonce=\"n\"",
                    "Digest realm=\"r\", realm=\"s\", nonce=\"n\"", "Basic cmVhbG0="] {
            #expect(throws: SIPParseError.self, "\(bad)") { try SIPDigestChallenge(parsing: bad) }
        }
        let secret = "0123456789abcdef0123456789abcdef"
        let cases: [(String, SIPParseError)] = [
            ("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:a\"", .badAuthorization("has no response")),
            ("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:a\", response=\"\(secret)\", qop=auth", .badAuthorization("has a qop but no cnonce or nc")),
            ("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:a\", response=\"\(secret)\", qop=auth, cnonce=\"c\", nc=1", .badAuthorization("has an nc that is not 8 hex digits")),
            ("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:a\", response=\"\(secret)\", algorithm=SHA-256-sess", .badAuthorization("uses a -sess algorithm but has no cnonce")),
            ("Digest username=\"u\", response=\"\(secret)\" junk", .badAuthorization("is not Digest followed by name=value parameters separated by commas")),
        ]
        for (value, expected) in cases {
            let error = #expect(throws: SIPParseError.self) { try SIPDigestAuthorization(parsing: value) }
            #expect(error == expected)
            #expect(error.map { !$0.description.contains(secret) } == true)
        }
        // Credentials never show their password.
        #expect(!"\(SIPDigestCredentials(username: "u", password: "hunter2"))".contains("hunter2"))
    }

    @Test func verificationRefusesAResponseOfTheWrongLengthOrAnUnknownQop() throws {
        let challenge = SIPDigestChallenge(realm: "r", nonce: "n", algorithm: .sha256)
        let value = SIPDigestCredentials(username: "u", password: "p").authorization(for: challenge, method: .register, uri: "sip:r", cnonce: "c", nonceCount: 1)
        var authorization = try SIPDigestAuthorization(parsing: value)
        #expect(authorization.verify(password: "p", method: .register))
        authorization.response = String(authorization.response.dropLast())
        #expect(!authorization.verify(password: "p", method: .register))
        var upper = try SIPDigestAuthorization(parsing: value.replacingOccurrences(of: "qop=auth", with: "qop=auth-conf"))
        #expect(!upper.verify(password: "p", method: .register))
        // An upper-case hex response is the same response.
        let hex = try SIPDigestAuthorization(parsing: value).response
        upper = try SIPDigestAuthorization(parsing: value.replacingOccurrences(of: hex, with: hex.uppercased()))
        #expect(upper.verify(password: "p", method: .register))
    }
}
