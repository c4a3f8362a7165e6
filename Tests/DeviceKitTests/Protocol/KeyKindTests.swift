import Testing

@testable import DeviceKit

/// The one parser of keys written as hex, and the lengths each kind of key may have (protocol.md §3.2).
@Suite struct KeyKindTests {
    @Test(arguments: [(KeyKind.device, 16...64), (.fleetMaster, 32...64)])
    func aKeyIsAcceptedAtEveryLengthOfItsKindAndRefusedJustOutside(kind: KeyKind, lengths: ClosedRange<Int>) throws {
        for count in [lengths.lowerBound, lengths.upperBound] {
            #expect(try kind.parse(String(repeating: "a5", count: count)) == Array(repeating: 0xA5, count: count))
        }
        for count in [lengths.lowerBound - 1, lengths.upperBound + 1] {
            #expect(throws: kind == .device ? KeyError.wrongLength(count) : .wrongMasterLength(count)) {
                try kind.parse(String(repeating: "a5", count: count))
            }
        }
    }

    @Test func aKeyFileOfTheUsualShapesIsReadAndWhatIsNotHexIsSaid() throws {
        let bytes = Array(UInt8(0)..<32)
        let hex = Hex.encode(bytes)
        for text in [hex, hex + "\n", "  " + hex + "\r\n", "0x" + hex, Hex.encode(bytes, separator: ":"), hex.uppercased()] {
            #expect(try KeyKind.fleetMaster.parse(text) == bytes, "\(text)")
        }
        #expect(throws: KeyError.notHex(.oddNumberOfDigits(63))) { try KeyKind.device.parse(hex.dropLast()) }
        #expect(throws: KeyError.notHex(.notADigit(position: 3))) { try KeyKind.device.parse("00g0" + hex.dropFirst(4)) }
        #expect(throws: KeyError.notHex(.notADigit(position: 1))) { try KeyKind.device.parse("-" + hex) }
    }

    @Test func theKeyTypesCheckLengthsAsTheParserDoes() {
        #expect(throws: KeyError.wrongLength(15)) { try DeviceKey(deviceID: 1, rootKey: Array(repeating: 1, count: 15)) }
        #expect(throws: KeyError.wrongMasterLength(31)) { try FleetMasterKey(bytes: Array(repeating: 1, count: 31)) }
        #expect(throws: KeyError.wrongMasterLength(65)) { try Provisioning.derivedRootKey(deviceID: 1, master: Array(repeating: 1, count: 65)) }
        #expect("\(KeyKind.device) \(KeyKind.fleetMaster)" == "device key fleet master key")
    }
}
