/* A library whose constructor forks (and waits for the child), as a plug-in
 * that starts a helper process might: vmcode holds its loader lock then. */
#include <sys/wait.h>
#include <unistd.h>

int t_fork_status = -1;

__attribute__((constructor)) static void fork_in_ctor(void)
{
    pid_t pid = fork();
    if (pid == 0) _exit(7);
    int st = 0;
    if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st)) t_fork_status = WEXITSTATUS(st);
}

int t_fork_result(void) { return t_fork_status; }
