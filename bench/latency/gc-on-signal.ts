// Preloaded into the sync worker by the latency benchmark only (with --expose-gc): SIGWINCH (ignored
// by default; the Temporal runtime shuts the worker down on SIGUSR2) runs
// a full garbage collection, so the worker's resident memory can be read without the garbage
// that happens to be waiting (V8 gives memory back to the system after a full collection; before
// it, a worker that did nothing for minutes can still hold a hundred MiB more than it needs).
// With BENCH_MEMORY_FILE set, it then writes process.memoryUsage() there: the main thread's live
// JavaScript memory (activities, IMAP connections), which unlike RSS does not keep the high-water
// mark of earlier work. The workflow threads' heaps are not in it.
import { writeFileSync } from 'node:fs';

const collect = (globalThis as { gc?: () => void }).gc;
const file = process.env.BENCH_MEMORY_FILE;
if (collect)
  process.on('SIGWINCH', () => {
    collect();
    if (file) writeFileSync(file, JSON.stringify(process.memoryUsage()));
  });
