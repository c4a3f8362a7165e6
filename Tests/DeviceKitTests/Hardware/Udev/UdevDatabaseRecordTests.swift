import Testing

@testable import DeviceKit

@Suite struct UdevDatabaseRecordTests {
    @Test func aRecordGivesPropertiesLinksAndCurrentTags() {
        let record = UdevDatabaseRecord(parsing: """
            S:input/by-id/usb-Logitech_USB_Keyboard-event-kbd
            S:input/by-path/pci-0000:00:14.0-usb-0:2:1.0-event-kbd
            L:0
            E:ID_INPUT_KEY=1
            E:LIBINPUT_CALIBRATION_MATRIX=1 0 0 0 1 0
            E:ID_MODEL_ENC=USB\\x20Keyboard=x
            I:10038064809
            G:seat
            G:power-switch
            Q:seat
            W:12
            V:1

            """)
        #expect(record.symlinks == [
            "input/by-id/usb-Logitech_USB_Keyboard-event-kbd", "input/by-path/pci-0000:00:14.0-usb-0:2:1.0-event-kbd",
        ])
        #expect(record.properties == [
            "ID_INPUT_KEY": "1", "LIBINPUT_CALIBRATION_MATRIX": "1 0 0 0 1 0", "ID_MODEL_ENC": "USB\\x20Keyboard=x",
        ])
        #expect(record.tags == ["seat"], "a rule removed power-switch: only G: remembers it")
    }

    @Test func anOldUdevdWithoutCurrentTagsGivesTheGTags() {
        #expect(UdevDatabaseRecord(parsing: "G:seat\nG:power-switch\n").tags == ["seat", "power-switch"])
    }

    @Test func garbageLinesAreSkipped() {
        let record = UdevDatabaseRecord(parsing: "garbage\nE:\nE:=x\nE:NOVALUE\nX:what\n:\nS:\nE:GOOD=1\n\u{0}\u{ff}")
        #expect(record == UdevDatabaseRecord(properties: ["GOOD": "1"]))
    }

    @Test func directoryNamesSortNaturally() {
        let names = ["event10", "event2", "ttyUSB1", "event1", "ttyS0", "ttyUSB0", "event", "mice"]
        #expect(names.sorted(by: KernelFile.naturallyBefore)
            == ["event", "event1", "event2", "event10", "mice", "ttyS0", "ttyUSB0", "ttyUSB1"])
    }

    @Test func deviceNumbersAreMajorColonMinor() {
        #expect(DeviceNumber(parsing: "13:67\n") == DeviceNumber(major: 13, minor: 67))
        #expect(DeviceNumber(parsing: "13") == nil)
        #expect(DeviceNumber(parsing: "13:x") == nil)
        #expect(DeviceNumber(parsing: "1:2:3") == nil)
    }
}

@Suite struct SysfsBitmapTests {
    @Test func theLastWordHoldsTheLowestCodes() throws {
        #expect(try SysfsBitmap.codes("100000 0 0\n", bitsPerWord: 64) == [148])
        #expect(try SysfsBitmap.codes("3", bitsPerWord: 64) == [0, 1])
        #expect(try SysfsBitmap.codes("0", bitsPerWord: 64) == [])
        #expect(try SysfsBitmap.codes("8000000000000000 1", bitsPerWord: 64) == [0, 127])
    }

    @Test func a32BitKernelPrints32BitWords() throws {
        #expect(try SysfsBitmap.codes("100000 0 0 0 0", bitsPerWord: 32) == [148])
        #expect(throws: SysfsBitmap.ParseError.self) { try SysfsBitmap.codes("100000000 0", bitsPerWord: 32) }
    }

    @Test func theKeyboardBitmapMatchesItsKeys() throws {
        let codes = try SysfsBitmap.codes("1000000000007 ff9f207ac14057ff febeffdfffefffff fffffffffffffffe", bitsPerWord: 64)
        #expect(codes.count == 163)
        #expect(codes.contains(116) && codes.contains(142) && !codes.contains(0) && !codes.contains(205))
        #expect(Array(codes.suffix(4)) == [192, 193, 194, 240])
    }

    @Test(arguments: ["", "  \n", "xyz", "0x10", "-1", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33"])
    func garbageIsATypedError(text: String) {
        #expect(throws: SysfsBitmap.ParseError.self) { try SysfsBitmap.codes(text, bitsPerWord: 64) }
    }

    @Test func randomBytesNeverCrash() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let length = Int.random(in: 0..<40, using: &generator)
            let text = String(decoding: (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }, as: UTF8.self)
            _ = try? SysfsBitmap.codes(text, bitsPerWord: 64)
            _ = UdevDatabaseRecord(parsing: text)
        }
    }
}
