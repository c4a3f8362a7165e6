import Testing

@testable import CenterConsole

/// Operators' passwords: the policy in words, bcrypt hashes that verify only their own password.
@Suite struct OperatorPasswordTests {
    /// bcrypt's lowest cost: the policy and the hash format are the same as at 12, in milliseconds.
    static let testCost: UInt8 = 4

    @Test func aHashVerifiesItsPasswordAndNoOther() throws {
        let hash = try OperatorPassword.hash("correct horse", cost: Self.testCost)
        #expect(hash.hasPrefix("$2b$04$") && hash.count == 60)
        #expect(OperatorPassword.verify("correct horse", hash: hash))
        #expect(!OperatorPassword.verify("correct hors", hash: hash))
        #expect(!OperatorPassword.verify("correct horse", hash: "not a hash"))
        #expect(try OperatorPassword.hash("correct horse", cost: Self.testCost) != hash, "a fresh salt each time")
    }

    @Test func storedHashesUseCost12() {
        #expect(OperatorPassword.cost == 12)
    }

    @Test(arguments: [
        ("short", OperatorPasswordError.tooShort(bytes: 5)),
        ("        ", .blank),
        (" \t \t \t \t ", .blank),
        (String(repeating: "a", count: 73), .tooLong(bytes: 73)),
        (String(repeating: "日", count: 25), .tooLong(bytes: 75)),
        ("abcd\u{0}efgh", .containsNUL),
    ])
    func aPasswordOutsideThePolicyIsRefused(password: String, error: OperatorPasswordError) {
        #expect(throws: error) { try OperatorPassword.hash(password, cost: Self.testCost) }
    }

    /// At the limits: 8 and 72 bytes, 24 Chinese characters (72 bytes).
    @Test(arguments: ["12345678", String(repeating: "a", count: 72), String(repeating: "日", count: 24), "  pass  word  "])
    func aPasswordWithinThePolicyIsTaken(password: String) throws {
        let hash = try OperatorPassword.hash(password, cost: Self.testCost)
        #expect(OperatorPassword.verify(password, hash: hash))
    }

    /// bcrypt reads 72 bytes: a longer password whose first 72 are right must not open the account.
    @Test func aPasswordLongerThanBcryptReadsNeverVerifies() throws {
        let password = String(repeating: "a", count: 72)
        let hash = try OperatorPassword.hash(password, cost: Self.testCost)
        #expect(!OperatorPassword.verify(password + "b", hash: hash))
    }

    @Test func theRefusalsSayWhatToDo() {
        #expect(OperatorPasswordError.tooShort(bytes: 5).description == "the password is too short (5 bytes): use at least 8 characters")
        #expect(OperatorPasswordError.blank.description.contains("only spaces"))
    }
}
