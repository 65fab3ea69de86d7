// llama.cpp (through node-llama-cpp, CPU) as the reference client for vkft's GGUF exports.
// usage: node tests/llama_check.mjs generate MODEL.gguf PROMPT N [LORA.gguf]
//          -> {"text": prompt + greedy continuation, "ids": [generated ids]}
//        node tests/llama_check.mjs tokenize MODEL.gguf FILE.jsonl
//          -> one line per input line {"ids": [...]} (the text's tokens, no BOS)
// NODE_LLAMA_CPP names the node_modules folder holding node-llama-cpp (scripts/setup.sh
// installs it under .deps/npm); prints one JSON line per result.
import {readFileSync} from "node:fs";
import {join} from "node:path";
import {pathToFileURL} from "node:url";

const {getLlama} = await import(
  pathToFileURL(join(process.env.NODE_LLAMA_CPP, "node-llama-cpp", "dist", "index.js")).href);

const [mode, modelPath, arg, count, loraPath] = process.argv.slice(2);
// one thread: llama.cpp's threads spin while they wait for each other, which on a busy
// machine with few cores costs far more than the tiny test models' arithmetic
const llama = await getLlama({gpu: false, build: "never", logLevel: "error", maxThreads: 1});
const model = await llama.loadModel({modelPath});

if (mode === "generate") {
  const context = await model.createContext({
    contextSize: 256,
    threads: 1,
    ...(loraPath ? {lora: {adapters: [{filePath: loraPath, scale: 1}]}} : {}),
  });
  const sequence = context.getSequence();
  const prompt = [model.tokens.bos, ...model.tokenize(arg)];
  const ids = [];
  for await (const id of sequence.evaluate(prompt, {temperature: 0})) {
    if (id === model.tokens.eos || ids.length >= Number(count)) break;
    ids.push(id);
  }
  console.log(JSON.stringify({text: model.detokenize([...prompt.slice(1), ...ids]), ids}));
  await context.dispose();
} else if (mode === "tokenize") {
  for (const line of readFileSync(arg, "utf8").split("\n").filter((l) => l.trim())) {
    const text = JSON.parse(line).text;
    /* special tokens written in the text are tokens, as in Hugging Face's default */
    console.log(JSON.stringify({ids: Array.from(model.tokenize(text, true))}));
  }
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
await model.dispose();
await llama.dispose();
