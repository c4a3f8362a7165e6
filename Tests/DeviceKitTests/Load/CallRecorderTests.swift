import Foundation
import Testing

@testable import DeviceKit

/// `--record-calls`: what a device hears, kept per call and written when the call ends.
@Suite struct CallRecorderTests {
    static func temporaryDirectory() -> String { NSTemporaryDirectory() + "call-recorder-\(UUID().uuidString)" }

    static func read(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map { Array($0) } }

    @Test func aCallIsWrittenWhenItEndsWithThePayloadsInArrivalOrder() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try CallRecorder.prepare(directory: directory)
        let recorder = CallRecorder(directory: directory)
        recorder.begin(device: 1001, call: 7)
        recorder.append([1, 2, 3], device: 1001, call: 7)
        recorder.append([9, 9], device: 1002, call: 7)  // another device's call, not recorded
        recorder.append([4, 5], device: 1001, call: 7)
        let path = directory + "/device-1001-call-7.wav"
        #expect(Self.read(path) == nil)
        recorder.finish(device: 1001, call: 7)
        #expect(Self.read(path) == MuLawWAV.file([1, 2, 3, 4, 5]))
        #expect(recorder.written == [path] && recorder.failures.isEmpty)
        recorder.finish(device: 1002, call: 7)  // never begun: no file
        #expect(!FileManager.default.fileExists(atPath: directory + "/device-1002-call-7.wav"))
    }

    @Test func aCallKeepsAtMostTenMinutes() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try CallRecorder.prepare(directory: directory)
        let recorder = CallRecorder(directory: directory)
        recorder.begin(device: 1, call: 1)
        let packet = [UInt8](repeating: 0x55, count: 160)
        for _ in 0..<(CallRecorder.maximumSamples / 160 + 3) { recorder.append(packet, device: 1, call: 1) }
        recorder.finish(device: 1, call: 1)
        let file = try #require(Self.read(directory + "/device-1-call-1.wav"))
        #expect(file.count == MuLawWAV.headerLength + 10 * 60 * 8000)
    }

    @Test func callsStillGoingAreWrittenWhenTheRunEnds() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try CallRecorder.prepare(directory: directory)
        let recorder = CallRecorder(directory: directory)
        recorder.begin(device: 2, call: 3)
        recorder.begin(device: 4, call: 5)
        recorder.append([0x7F], device: 4, call: 5)
        recorder.finishAll()
        #expect(Self.read(directory + "/device-2-call-3.wav") == MuLawWAV.file([]))
        #expect(Self.read(directory + "/device-4-call-5.wav") == MuLawWAV.file([0x7F]))
        #expect(recorder.written.count == 2)
    }

    @Test func aDirectoryThatCannotBeWrittenIsSaidAtTheStart() throws {
        let file = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        // Under a regular file, no directory can be made.
        let error = try #require(throws: LoadError.self) { try CallRecorder.prepare(directory: file + "/calls") }
        #expect(error.description == "--record-calls: cannot create the directory \(file)/calls: \(file) is a file, not a directory; choose another directory or move the file")
        var plan = LoadPlan(centre: try .init(ipAddress: "127.0.0.1", port: 1), master: try FleetMasterKey(bytes: Array(repeating: 1, count: 32)), fleetSize: 1)
        plan.recordCalls = file + "/calls"
        #expect(throws: LoadError.self) { try plan.prepareCallRecording() }
        try plan.validate(workers: 1)  // the plan itself is fine: the directory is looked at when the run starts
    }

    @Test func aFileThatCannotBeWrittenAtTheEndIsCountedWithWhy() throws {
        let directory = Self.temporaryDirectory()
        try CallRecorder.prepare(directory: directory)
        let recorder = CallRecorder(directory: directory)
        recorder.begin(device: 1, call: 2)
        try FileManager.default.removeItem(atPath: directory)
        recorder.finish(device: 1, call: 2)
        #expect(recorder.written.isEmpty)
        #expect(recorder.failures.count == 1 && recorder.failures[0].hasPrefix(directory + "/device-1-call-2.wav: "))
        #expect(recorder.failures.first?.lowercased().contains("no such file") == true, "\(recorder.failures)")
    }

    @Test func recordingNeedsOneProcess() throws {
        var plan = LoadPlan(centre: try .init(ipAddress: "127.0.0.1", port: 1), master: try FleetMasterKey(bytes: Array(repeating: 1, count: 32)), fleetSize: 10)
        plan.recordCalls = "calls"
        #expect(throws: LoadError("--record-calls records in one process: give --workers 1 (at most 19,000 TCP devices) or --transport udp")) {
            try plan.validate(workers: 2)
        }
    }
}
