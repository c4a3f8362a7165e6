import Testing

@testable import DeviceKit

/// The accounts file of the centre's DC-09 port: each error names the account and what to write.
@Suite struct DC09AccountsTests {
    @Test func accountsMapToDevicesWithOptionalKeys() throws {
        let accounts = try DC09Accounts(toml: """
            [accounts."1234"]
            device = 17
            [accounts."abc"]
            device = 18
            key = "000102030405060708090a0b0c0d0e0f"
            [accounts."5678"]
            device = 19
            key = "000102030405060708090a0b0c0d0e0f1011121314151617"
            """)
        #expect(accounts.accounts["1234"]?.device == 17 && accounts.accounts["1234"]?.key == nil)
        #expect(accounts.accounts["ABC"]?.device == 18 && accounts.accounts["ABC"]?.key?.byteCount == 16, "accounts are hex: upper-cased")
        #expect(accounts.accounts["5678"]?.key?.byteCount == 24)
        #expect(accounts.receiving().accounts.keys.sorted() == ["1234", "5678", "ABC"])
    }

    @Test(arguments: [
        ("[accounts.\"12\"]\ndevice = 1", "account \"12\" is not a DC-09 account"),
        ("[accounts.\"12G4\"]\ndevice = 1", "account \"12G4\" is not a DC-09 account"),
        ("[accounts.\"1234\"]\ndevice = 1\nkey = \"0011\"", "account \"1234\" key: a DC-09 key must be 16, 24 or 32 bytes"),
        ("[accounts.\"1234\"]\ndevice = 1\nkey = \"zz\"", "account \"1234\" key: the key is not hex"),
        ("[accounts.\"1234\"]\ndevice = 1\nkey = 7", "account \"1234\" key is not a string"),
        ("[accounts.\"1234\"]\nkey = \"000102030405060708090a0b0c0d0e0f\"", "account \"1234\" needs device = "),
        ("[accounts.\"1234\"]\ndevice = -1", "account \"1234\" needs device = "),
        ("[accounts.\"1234\"]\ndevice = 1\nzone = 2", "account \"1234\" has zone: an account has device and key only"),
        ("[accounts.\"1234\"]\ndevice = 1\n[accounts.\"5678\"]\ndevice = 1", "names device 1, as account 1234 does"),
        ("[accounts.\"abc\"]\ndevice = 1\n[accounts.\"ABC\"]\ndevice = 2", "is listed twice"),
        ("[accounts]\n\"1234\" = 17", "account \"1234\" is not a table"),
        ("[devices]\n1 = 2", "has no [accounts."),
        ("[accounts.\"1234\"\ndevice = 1", "not valid TOML"),
    ])
    func aBadFileSaysWhichAccountAndWhatIsWrong(_ text: String, _ expected: String) {
        #expect {
            try DC09Accounts(toml: text)
        } throws: { error in
            "\(error)".contains(expected)
        }
    }

    @Test func anErrorNeverShowsTheKey() {
        let key = "000102030405060708090a0b0c0d0e0f10"  // 17 bytes
        #expect { try DC09Accounts(toml: "[accounts.\"1234\"]\ndevice = 1\nkey = \"\(key)\"") } throws: { error in
            !"\(error)".contains(key) && "\(error)".contains("got 17 bytes")
        }
    }
}
