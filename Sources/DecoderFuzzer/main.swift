// Placeholder: replaced by the fuzzer helper.
print("DecoderFuzzer")
