import ArgumentParser

/// The message `command` refuses `arguments` with, as ArgumentParser prints it after "Error: "; `nil` when
/// it takes them (parsing and `validate()`).
func refusal<C: ParsableCommand>(_ command: C.Type, _ arguments: [String]) -> String? {
    do {
        _ = try C.parse(arguments)
        return nil
    } catch {
        return C.message(for: error)
    }
}
