// Two entry points, chosen at compile time:
//
// - with `-DFUZZING` (and `-sanitize=fuzzer`): `LLVMFuzzerTestOneInput`, and a `main` that runs libFuzzer.
// - without it (a plain `swift build`): a `main` that replays corpus files and directories through `fuzzOne`,
//   to reproduce a crash or run the seed corpus in CI:  DecoderFuzzer [-v] fuzz/corpus crash-1234…
//
// No file is named main.swift, so the module is library-style code in both builds (`-parse-as-library` is
// harmless) and `@main` only exists when libFuzzer does not drive the program.

#if FUZZING

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

// SwiftPM compiles an executable module with its entry point renamed to `<module>_main` and links it with
// `--defsym main=DecoderFuzzer_main` (so tests can link executables). With `-parse-as-library` and no `@main`
// that symbol would be missing, and libFuzzer's own `main` is never used. So provide it, and hand control to
// libFuzzer's driver, which is what libFuzzer's `main` does. (A plain `swiftc` build ignores this function and
// links libFuzzer's `main`.)
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("DecoderFuzzer_main")
public func decoderFuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzz)
}

#else

import Foundation

@main
enum DecoderFuzzerReplay {
    static func main() {
        var verbose = false
        var paths: [String] = []
        for argument in CommandLine.arguments.dropFirst() {
            switch argument {
            case "-v", "--verbose": verbose = true
            case "-h", "--help":
                print("usage: DecoderFuzzer [-v] FILE-OR-DIRECTORY…  (replays inputs through the fuzz checks)")
                return
            // libFuzzer options (-runs=…, -max_total_time=…) are ignored, so a fuzz command line replays as is.
            case let option where option.hasPrefix("-"): continue
            default: paths.append(argument)
            }
        }
        if paths.isEmpty {
            print("usage: DecoderFuzzer [-v] FILE-OR-DIRECTORY…  (replays inputs through the fuzz checks)")
        }
        var inputs = 0
        var missing = 0
        for path in paths {
            for file in files(at: path) ?? { missing += 1; print("not found: \(path)"); return [] }() {
                guard let data = FileManager.default.contents(atPath: file) else {
                    print("unreadable: \(file)")
                    missing += 1
                    continue
                }
                if verbose { print("\(file) (\(data.count) bytes)") }
                data.withUnsafeBytes { fuzzOne($0) }
                inputs += 1
            }
        }
        print("DecoderFuzzer: ran \(inputs) input\(inputs == 1 ? "" : "s"), all checks held"
            + (missing > 0 ? "; \(missing) path\(missing == 1 ? "" : "s") not found or unreadable" : ""))
        if missing > 0 { exit(1) }
    }

    /// `path` itself if it is a file, every regular file under it (sorted) if it is a directory, nil if absent.
    static func files(at path: String) -> [String]? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return nil }
        guard isDirectory.boolValue else { return [path] }
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return [] }
        var found: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let full = path.hasSuffix("/") ? path + relative : path + "/" + relative
            var childIsDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &childIsDirectory), !childIsDirectory.boolValue {
                found.append(full)
            }
        }
        return found.sorted()
    }
}

#endif
