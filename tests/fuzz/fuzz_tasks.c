/* fuzz_tasks.c: libFuzzer target for the eval task reader (JSONL: one JSON object per line,
 * UTF-8 and field checks, answers parsed as exact numbers, duplicate ids) and the prompt
 * built from a template. Seeds: `raasbench tasks` output and GSM8K lines (seeds.sh). */
#include "fuzz_util.h"

#include "tasks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_file(data, size, path);
    task_set s;
    rb_err e;
    if (tasks_read(path, 0, &s, &e) == RB_OK) {
        for (int i = 0; i < s.n && i < 8; i++) {
            char *p = tasks_prompt(&s.t[i], "Q: {question}\nA: {question}");
            free(p);
            p = tasks_prompt(&s.t[i], NULL);
            free(p);
        }
        tasks_free(&s);
    }
    close(fd);
    return 0;
}
