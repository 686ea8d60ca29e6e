/*
 * mfs.h: client interface of the MFS distributed file server (libmfs.so).
 *
 * Link with -lmfs. Every function returns -1 on failure; MFS_Lookup returns the
 * inode number it found, the others 0 on success. Requests go over UDP; each is
 * retried until the server answers (MFS_TIMEOUT_MS, default 5000, is how long
 * one attempt waits), so a call blocks while the server is down.
 */
#ifndef MFS_H
#define MFS_H

#define MFS_DIRECTORY    (0)
#define MFS_REGULAR_FILE (1)

#define MFS_BLOCK_SIZE   (4096)

typedef struct __MFS_Stat_t {
    int type;   /* MFS_DIRECTORY or MFS_REGULAR_FILE */
    int size;   /* bytes: 4096 per directory block; 4096 * (last written block + 1) */
} MFS_Stat_t;

/* A directory block read with MFS_Read is MFS_BLOCK_SIZE / 32 of these. */
typedef struct __MFS_DirEnt_t {
    char name[28];  /* NUL-terminated; at most 27 bytes */
    int  inum;      /* -1: unused entry */
} MFS_DirEnt_t;

int MFS_Init(char *hostname, int port);
int MFS_Lookup(int pinum, char *name);
int MFS_Stat(int inum, MFS_Stat_t *m);
int MFS_Write(int inum, char *buffer, int block);
int MFS_Read(int inum, char *buffer, int block);
int MFS_Creat(int pinum, int type, char *name);
int MFS_Unlink(int pinum, char *name);
int MFS_Shutdown(void);

#endif /* MFS_H */
