#!/bin/sh
# make fuzz: builds the libFuzzer target Tests/Fuzz/Fuzz.swift over the sources of the recording
# decoder, the model, the rendering and the web config parser, then runs it from the committed
# seeds (Tests/Fuzz/seeds) for FUZZ_SECONDS (default 600). New inputs go to .build/fuzz/corpus;
# a crash leaves its input in .build/fuzz and exits non-zero.
# Each input must finish within 10 s and 2 GB: a slow or growing replay counts as a crash.
set -eu
cd "$(dirname "$0")/../.."
B=.build/fuzz
SECONDS_TO_RUN=${FUZZ_SECONDS:-600}
mkdir -p $B/abi $B/corpus
cat > $B/abi/module.modulemap <<MAP
module IrqscopeABI { header "$PWD/Sources/ABI/include/irqscope_abi.h" export * }
MAP
FLAGS="-sanitize=fuzzer -parse-as-library -O -wmo -g -swift-version 6 -I $B -Xcc -fmodule-map-file=$B/abi/module.modulemap"
module() { # module NAME SOURCES...: a static library and its .swiftmodule in $B
    name=$1; shift
    swiftc $FLAGS -module-name $name -emit-module -emit-module-path $B/$name.swiftmodule \
        -emit-library -static -o $B/lib$name.a "$@"
}
module IrqscopeDecode Sources/Decode/*.swift
module IrqscopeModel Sources/Model/*.swift
module IrqscopeRender Sources/Render/*.swift
module IrqscopeServer Sources/Server/SimpleYAML.swift Sources/Server/WebConfigFile.swift
swiftc $FLAGS -module-name IrqscopeFuzz -o $B/irqscope-fuzz Tests/Fuzz/Fuzz.swift \
    -L $B -lIrqscopeRender -lIrqscopeModel -lIrqscopeDecode -lIrqscopeServer
cd $B
exec ./irqscope-fuzz -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 corpus ../../Tests/Fuzz/seeds
