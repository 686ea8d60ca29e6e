/* A C program written against mfs.h, as a user of libmfs.so would write it.
 * usage: client HOST PORT. Exits 0 when every check holds, 1 at the first that
 * does not (and says which on stderr). Ends with MFS_Shutdown. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include "mfs.h"

#define CHECK(cond, ...) do { if (!(cond)) { \
    fprintf(stderr, "FAIL line %d: %s: ", __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); return 1; } } while (0)

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s HOST PORT\n", argv[0]); return 2; }
    CHECK(MFS_Init(argv[1], atoi(argv[2])) == 0, "init");

    MFS_Stat_t st = { -1, -1 };
    CHECK(MFS_Stat(0, &st) == 0 && st.type == MFS_DIRECTORY && st.size == MFS_BLOCK_SIZE,
          "root stat: type %d size %d", st.type, st.size);
    CHECK(MFS_Creat(0, MFS_DIRECTORY, "dir") == 0, "creat dir");
    CHECK(MFS_Creat(0, MFS_DIRECTORY, "dir") == 0, "creat of an existing name succeeds");
    int dir = MFS_Lookup(0, "dir");
    CHECK(dir > 0, "lookup dir gave %d", dir);
    CHECK(MFS_Lookup(dir, "..") == 0, "dir/.. is the root");
    CHECK(MFS_Creat(dir, MFS_REGULAR_FILE, "file") == 0, "creat file");
    int file = MFS_Lookup(dir, "file");
    CHECK(file > 0 && file != dir, "lookup file gave %d", file);

    char buf[MFS_BLOCK_SIZE], back[MFS_BLOCK_SIZE];
    for (int b = 0; b < 14; b++) {
        memset(buf, 'A' + b, sizeof buf);
        CHECK(MFS_Write(file, buf, b) == 0, "write block %d", b);
    }
    CHECK(MFS_Write(file, buf, 14) == -1, "block 14 is past the 14 direct pointers");
    CHECK(MFS_Write(dir, buf, 0) == -1, "writing a directory fails");
    for (int b = 0; b < 14; b++) {
        memset(back, 0, sizeof back);
        CHECK(MFS_Read(file, back, b) == 0, "read block %d", b);
        memset(buf, 'A' + b, sizeof buf);
        CHECK(memcmp(buf, back, sizeof buf) == 0, "block %d reads back what was written", b);
    }
    CHECK(MFS_Stat(file, &st) == 0 && st.type == MFS_REGULAR_FILE && st.size == 14 * MFS_BLOCK_SIZE,
          "file stat: type %d size %d", st.type, st.size);

    MFS_DirEnt_t entries[MFS_BLOCK_SIZE / sizeof(MFS_DirEnt_t)];
    CHECK(sizeof(MFS_DirEnt_t) == 32, "a directory entry is 32 bytes");
    CHECK(MFS_Read(dir, (char *)entries, 0) == 0, "read dir block");
    CHECK(strcmp(entries[0].name, ".") == 0 && entries[0].inum == dir, "entry 0 is .");
    CHECK(strcmp(entries[1].name, "..") == 0 && entries[1].inum == 0, "entry 1 is ..");
    CHECK(strcmp(entries[2].name, "file") == 0 && entries[2].inum == file, "entry 2 is file");
    CHECK(entries[3].inum == -1, "entry 3 is unused");

    char name27[28], name28[29];
    memset(name27, 'n', 27); name27[27] = 0;
    memset(name28, 'n', 28); name28[28] = 0;
    CHECK(MFS_Creat(dir, MFS_REGULAR_FILE, name27) == 0, "a 27-byte name fits");
    CHECK(MFS_Lookup(dir, name27) > 0, "and can be found");
    CHECK(MFS_Creat(dir, MFS_REGULAR_FILE, name28) == -1, "a 28-byte name does not fit");
    CHECK(MFS_Lookup(file, "x") == -1, "lookup in a file fails");
    CHECK(MFS_Unlink(0, "dir") == -1, "unlink of a non-empty directory fails");
    CHECK(MFS_Unlink(dir, "file") == 0, "unlink file");
    CHECK(MFS_Unlink(dir, "file") == 0, "unlink of a missing name succeeds");
    CHECK(MFS_Unlink(dir, name27) == 0, "unlink the long name");
    CHECK(MFS_Unlink(0, "dir") == 0, "unlink the emptied directory");
    CHECK(MFS_Lookup(0, "dir") == -1, "it is gone");
    CHECK(MFS_Stat(file, &st) == -1, "its inode is free");
    CHECK(MFS_Shutdown() == 0, "shutdown");
    printf("all checks passed\n");
    return 0;
}
